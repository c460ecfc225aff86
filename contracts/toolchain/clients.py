"""Generated clients, a product integrators can rely on: for every contract a typed Python package
(openapi-python-client) and TypeScript types (openapi-typescript), from one command, ``psgw contracts clients``.

Layout under the output directory (``build/clients`` by default):

- ``python/psgw_<layer>_<api>_v<N>/``: an importable package (``AuthenticatedClient``, ``api.<tag>.<operation>``,
  ``models``); its base URL is the gateway plus the contract's server URL, e.g.
  ``AuthenticatedClient(base_url="http://127.0.0.1:8080/experience/mobile-time/v2", token=...)``
- ``typescript/<layer>/<api>/v<N>.ts``: ``paths``, ``components`` and ``operations`` types
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from contracts import CONTRACTS_DIR
from contracts.toolchain.catalog import ContractLocation, contract_files
from contracts.toolchain.ecosystem.node_tools import DEFAULT_CACHE_DIR, ensure_node_tools

DEFAULT_OUTPUT_DIR = CONTRACTS_DIR.parent / "build" / "clients"
_GENERATE_TIMEOUT_SECONDS = 300


class ClientGenerationError(RuntimeError):
    """A generator refused a contract or could not run."""


@dataclass(frozen=True, slots=True)
class GeneratedClient:
    api: str  # "experience/mobile-time/v2"
    python_package: Path | None
    typescript_types: Path | None


def package_name(location: ContractLocation) -> str:
    """``experience/mobile-time/v2`` -> ``psgw_experience_mobile_time_v2``."""
    return f"psgw_{location.layer}_{location.api}_v{location.major}".replace("-", "_")


def api_name(location: ContractLocation) -> str:
    return f"{location.api_id}/v{location.major}"


def selected_contracts(root: Path, apis: Iterable[str] = ()) -> list[tuple[Path, ContractLocation]]:
    """Every contract under ``root``, or only those named ``<layer>/<api>/v<N>``; an unknown name is an error."""
    found = list(contract_files(root))
    wanted = set(apis)
    if not wanted:
        return found
    unknown = wanted - {api_name(location) for _, location in found}
    if unknown:
        raise ClientGenerationError(f"no contract for {', '.join(sorted(unknown))} under {root}")
    return [(path, location) for path, location in found if api_name(location) in wanted]


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=_GENERATE_TIMEOUT_SECONDS)
    except OSError as error:
        raise ClientGenerationError(f"{what}: {error}") from error
    if result.returncode != 0 or "Warning" in result.stdout:
        raise ClientGenerationError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}"[-4000:])


def generate_python_client(contract: Path, location: ContractLocation, output_dir: Path) -> Path:
    """The package for one contract under ``output_dir/python``; replaces an older generation."""
    name = package_name(location)
    target = output_dir / "python" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="psgw-client-") as scratch:
        config = Path(scratch) / "config.yaml"
        # No post hooks: the generator would run ruff over the output, which is not ours to lint.
        config.write_text(f"package_name_override: {name}\nproject_name_override: {name}\npost_hooks: []\n")
        _run(
            [
                sys.executable,
                "-m",
                "openapi_python_client",
                "generate",
                "--path",
                str(contract),
                "--output-path",
                str(target),
                "--meta",
                "none",
                "--overwrite",
                "--config",
                str(config),
            ],
            f"openapi-python-client on {contract.name} ({api_name(location)})",
        )
    return target


def generate_typescript_types(contract: Path, location: ContractLocation, output_dir: Path, bin_dir: Path) -> Path:
    target = output_dir / "typescript" / location.layer / location.api / f"v{location.major}.ts"
    target.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [str(bin_dir / "openapi-typescript"), str(contract), "--output", str(target)],
        f"openapi-typescript on {api_name(location)}",
    )
    return target


def generate_clients(
    root: Path = CONTRACTS_DIR,
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    *,
    apis: Iterable[str] = (),
    python: bool = True,
    typescript: bool = True,
    node_cache_dir: Path = DEFAULT_CACHE_DIR,
) -> list[GeneratedClient]:
    selected = selected_contracts(root, apis)
    bin_dir = ensure_node_tools(node_cache_dir) if typescript else None
    generated = []
    for contract, location in selected:
        generated.append(
            GeneratedClient(
                api=api_name(location),
                python_package=generate_python_client(contract, location, output_dir) if python else None,
                typescript_types=generate_typescript_types(contract, location, output_dir, bin_dir)
                if bin_dir is not None
                else None,
            )
        )
    return generated
