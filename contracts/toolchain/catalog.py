"""Discover the contracts under a directory (``<layer>/<api>/v<N>.yaml``) as ``ApiVersion`` records."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import msgspec

from contracts.toolchain.loader import ContractDocument, load_contract

LAYERS: tuple[str, ...] = ("system", "process", "experience")
LIFECYCLES: tuple[str, ...] = ("active", "deprecated", "retired")

_API_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.yaml$")


@dataclass(frozen=True, slots=True)
class ContractLocation:
    """Where a contract file sits in the layout, which fixes its id and its server URL."""

    layer: str
    api: str
    major: int

    @property
    def api_id(self) -> str:
        return f"{self.layer}/{self.api}"

    @property
    def base_path(self) -> str:
        return f"/{self.layer}/{self.api}/v{self.major}"


def locate_contract(path: PurePath) -> ContractLocation | None:
    """The layout position of ``path`` (its last three parts), or None when it is not laid out as one."""
    parts = path.parts
    if len(parts) < 3:
        return None
    layer, api, file_name = parts[-3:]
    version = _VERSION_FILE.match(file_name)
    if layer not in LAYERS or not _API_NAME.match(api) or version is None:
        return None
    return ContractLocation(layer=layer, api=api, major=int(version.group(1)))


class ApiVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One published major version of one API, as the catalog and the gateway see it."""

    api_id: str
    layer: str
    api: str
    major: int
    base_path: str
    path: str
    title: str
    contract_version: str
    description: str
    lifecycle: str
    sunset: str | None
    sla_tiers: tuple[str, ...]
    owner_tier: str | None


def api_version_of(location: ContractLocation, document: ContractDocument, path: Path) -> ApiVersion:
    """Build the record for a loaded contract; metadata it lacks shows up empty (lint reports it)."""
    info = document.content.get("info")
    info = info if isinstance(info, dict) else {}
    tiers = info.get("x-sla-tiers")
    return ApiVersion(
        api_id=location.api_id,
        layer=location.layer,
        api=location.api,
        major=location.major,
        base_path=location.base_path,
        path=str(path),
        title=_text(info.get("title")),
        contract_version=_text(info.get("version")),
        description=_text(info.get("description")),
        lifecycle=_text(info.get("x-lifecycle")) or "active",
        sunset=_text(info.get("x-sunset")) or None,
        sla_tiers=tuple(str(tier) for tier in tiers) if isinstance(tiers, list) else (),
        owner_tier=_text(info.get("x-owner-tier")) or None,
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def contract_files(root: Path) -> list[tuple[Path, ContractLocation]]:
    """Every ``<layer>/<api>/v<N>.yaml`` under ``root`` with its location, in catalog order."""
    found: list[tuple[Path, ContractLocation]] = []
    for layer in LAYERS:
        for path in (root / layer).glob("*/v*.yaml"):
            location = locate_contract(path)
            if location is not None:
                found.append((path, location))
    return sorted(found, key=lambda item: (LAYERS.index(item[1].layer), item[1].api, item[1].major))


def discover_contracts(root: Path) -> list[ApiVersion]:
    """Load every contract under ``root``; raises ``ContractLoadError`` on a file that is not YAML."""
    return [api_version_of(location, load_contract(path), path) for path, location in contract_files(root)]


def group_by_api(versions: list[ApiVersion]) -> dict[str, list[ApiVersion]]:
    """``api_id`` -> its versions, oldest major first (v1 -> v2 is the changelog order)."""
    grouped: dict[str, list[ApiVersion]] = defaultdict(list)
    for version in versions:
        grouped[version.api_id].append(version)
    return {api_id: sorted(items, key=lambda v: v.major) for api_id, items in grouped.items()}
