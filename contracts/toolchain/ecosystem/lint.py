"""Spectral (``spectral:oas``) and Redocly (``recommended``) over contracts: every error and warning.

The house lint (``psgw contracts lint``) carries rules for the same findings; this runs the tools integrators
use themselves, so a contract that is clean for us is clean for them too.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from contracts.toolchain.ecosystem.node_tools import NodeToolsError

SPECTRAL_RULESET = Path(__file__).with_name("spectral.yaml")
_RUN_TIMEOUT_SECONDS = 300
_SPECTRAL_SEVERITIES = {0: "error", 1: "warning", 2: "info", 3: "hint"}


class EcosystemFinding(msgspec.Struct, frozen=True, kw_only=True):
    tool: str
    rule: str
    severity: str
    message: str
    source: str
    line: int
    column: int

    def format_text(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}"
        return f"{where}: {self.severity.upper()} {self.tool} {self.rule}: {self.message}"


def _run(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=_RUN_TIMEOUT_SECONDS)
    except OSError as error:
        raise NodeToolsError(f"{command[0]} could not run: {error}") from error
    if not result.stdout.strip():
        raise NodeToolsError(f"{Path(command[0]).name} gave no report ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def _json_documents(text: str) -> Iterator[object]:
    """Redocly prints one JSON report per file; read them all."""
    decoder, index = json.JSONDecoder(), 0
    while (index := _skip_space(text, index)) < len(text):
        document, index = decoder.raw_decode(text, index)
        yield document


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def spectral_findings(bin_dir: Path, files: Sequence[Path]) -> list[EcosystemFinding]:
    output = _run(
        [
            str(bin_dir / "spectral"),
            "lint",
            "--ruleset",
            str(SPECTRAL_RULESET),
            "--format",
            "json",
            "--quiet",
            "--fail-severity",
            "error",
            *map(str, files),
        ]
    )
    start = output.find("[")  # Spectral prints "No results ..." before an empty report
    reports = json.loads(output[start:]) if start >= 0 else []
    return [
        EcosystemFinding(
            tool="spectral",
            rule=item["code"],
            severity=_SPECTRAL_SEVERITIES.get(item["severity"], "error"),
            message=item["message"],
            source=item["source"],
            line=item["range"]["start"]["line"] + 1,
            column=item["range"]["start"]["character"] + 1,
        )
        for item in reports
    ]


def redocly_findings(bin_dir: Path, files: Sequence[Path]) -> list[EcosystemFinding]:
    output = _run([str(bin_dir / "redocly"), "lint", "--extends", "recommended", "--format", "json", *map(str, files)])
    findings = []
    for report in _json_documents(output):
        for problem in report.get("problems", []) if isinstance(report, dict) else []:
            where = problem["location"][0]
            findings.append(
                EcosystemFinding(
                    tool="redocly",
                    rule=problem["ruleId"],
                    severity="warning" if problem["severity"] == "warn" else problem["severity"],
                    message=problem["message"],
                    source=where["source"]["ref"],
                    line=where.get("start", {}).get("line", 1),
                    column=where.get("start", {}).get("col", 1),
                )
            )
    return findings


def ecosystem_findings(bin_dir: Path, files: Sequence[Path]) -> list[EcosystemFinding]:
    """Every Spectral and Redocly finding (errors, warnings and hints) in ``files``."""
    return spectral_findings(bin_dir, files) + redocly_findings(bin_dir, files)
