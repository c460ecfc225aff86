"""Pinned npm tools installed once into a cache directory under the repository and run from there."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from contracts import CONTRACTS_DIR

# Exact versions: a new linter release can add rules, so it is an upgrade we make on purpose.
NODE_TOOLS: dict[str, str] = {
    "@stoplight/spectral-cli": "6.16.3",
    "@redocly/cli": "2.77.0",
    "openapi-typescript": "7.13.0",
}
DEFAULT_CACHE_DIR = CONTRACTS_DIR.parent / ".cache" / "node-tools"
_INSTALL_TIMEOUT_SECONDS = 600


class NodeToolsError(RuntimeError):
    """npm is missing or the install failed: the tools cannot run (not a finding in a contract)."""


def _installed_version(cache_dir: Path, package: str) -> str | None:
    manifest = cache_dir / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_node_tools(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Install the pinned tools into ``cache_dir`` unless they are there already; the ``.bin`` directory."""
    missing = {p: v for p, v in NODE_TOOLS.items() if _installed_version(cache_dir, p) != v}
    if missing:
        npm = shutil.which("npm")
        if npm is None:
            raise NodeToolsError("npm is not on PATH: install Node.js 20+ to run the ecosystem tools")
        cache_dir.mkdir(parents=True, exist_ok=True)
        manifest = cache_dir / "package.json"
        if not manifest.exists():
            manifest.write_text('{"name": "psgw-node-tools", "private": true}\n')
        command = [
            npm,
            "install",
            "--prefix",
            str(cache_dir),
            "--no-audit",
            "--no-fund",
            "--save-exact",
            *(f"{package}@{version}" for package, version in missing.items()),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=_INSTALL_TIMEOUT_SECONDS)
        if result.returncode != 0:
            raise NodeToolsError(f"npm install failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return cache_dir / "node_modules" / ".bin"
