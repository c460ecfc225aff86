"""Compare two versions of a contract as a whole: metadata, server URL, paths and their operations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from contracts.toolchain.diff import rules
from contracts.toolchain.diff.model import Change
from contracts.toolchain.diff.operation import compare_operation
from contracts.toolchain.diff.recorder import ChangeRecorder, DiffContext
from contracts.toolchain.loader import ContractDocument, load_contract
from contracts.toolchain.operations import OperationSite, as_list, as_mapping, iter_operations
from contracts.toolchain.pointer import join_pointer

_PLACEHOLDER = re.compile(r"\{[^{}]+\}")


def diff_documents(old: ContractDocument, new: ContractDocument) -> list[Change]:
    """Every change from ``old`` to ``new``, breaking ones included; ``old`` is the published version."""
    context = DiffContext(old, new, ChangeRecorder())
    _info(context)
    _servers(context)
    _paths(context)
    return context.recorder.changes()


def diff_files(old: Path, new: Path) -> list[Change]:
    return diff_documents(load_contract(old), load_contract(new))


def is_breaking(changes: Iterable[Change]) -> bool:
    return any(change.severity == "breaking" for change in changes)


def _info(context: DiffContext) -> None:
    old_info = as_mapping(context.old.content.get("info"))
    new_info = as_mapping(context.new.content.get("info"))
    record = context.recorder.record
    if old_info.get("version") != new_info.get("version"):
        message = f"contract version {old_info.get('version')} -> {new_info.get('version')}"
        record(rules.CONTRACT_VERSION_CHANGED, "/info/version", message)
    for key in ("x-lifecycle", "x-sunset"):
        if old_info.get(key) != new_info.get(key):
            message = f"{key} {old_info.get(key) or 'unset'} -> {new_info.get(key) or 'unset'}"
            record(rules.LIFECYCLE_CHANGED, join_pointer("/info", key), message)


def _server_url(document: ContractDocument) -> str | None:
    servers = as_list(document.content.get("servers"))
    url = as_mapping(servers[0]).get("url") if servers else None
    return url if isinstance(url, str) else None


def _servers(context: DiffContext) -> None:
    before, after = _server_url(context.old), _server_url(context.new)
    if before != after:
        message = f"server url {before or 'unset'} -> {after or 'unset'}"
        context.recorder.record(rules.SERVER_URL_CHANGED, "/servers", message)


def _route_key(path: str) -> str:
    """``/time-entries/{id}`` and ``/time-entries/{time_entry_id}`` are the same route."""
    return _PLACEHOLDER.sub("{}", path)


def _operations_by_route(document: ContractDocument) -> dict[str, dict[str, OperationSite]]:
    routes: dict[str, dict[str, OperationSite]] = {}
    for site in iter_operations(document):
        routes.setdefault(_route_key(site.path), {})[site.method] = site
    return routes


def _paths(context: DiffContext) -> None:
    record = context.recorder.record
    old_paths = {_route_key(path): path for path in as_mapping(context.old.content.get("paths"))}
    new_paths = {_route_key(path): path for path in as_mapping(context.new.content.get("paths"))}
    old_routes, new_routes = _operations_by_route(context.old), _operations_by_route(context.new)
    for route, path in old_paths.items():
        if route not in new_paths:
            pointer = join_pointer("/paths", path)
            record(rules.PATH_REMOVED, pointer, f"path {path} removed")
            for site in old_routes.get(route, {}).values():
                record(rules.PATH_REMOVED, pointer, f"path {path} removed", site.label)
    for route, path in new_paths.items():
        if route not in old_paths:
            record(rules.PATH_ADDED, join_pointer("/paths", path), f"new path {path}")
    for route in [route for route in old_paths if route in new_paths]:
        before, after = old_routes.get(route, {}), new_routes.get(route, {})
        for method, site in before.items():
            if method not in after:
                record(rules.OPERATION_REMOVED, site.pointer, f"{site.label} removed", site.label)
        for method, site in after.items():
            if method not in before:
                record(rules.OPERATION_ADDED, site.pointer, f"new operation {site.label}", site.label)
            else:
                compare_operation(context, before[method], site)
