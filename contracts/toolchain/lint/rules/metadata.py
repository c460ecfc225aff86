"""PSG-501..PSG-503: the file's place in the layout, its server URL and its info metadata agree."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from contracts.toolchain.catalog import LAYERS, LIFECYCLES
from contracts.toolchain.lint.context import LintContext
from contracts.toolchain.lint.model import Severity, Violation, rule
from contracts.toolchain.operations import as_list, as_mapping
from contracts.toolchain.pointer import join_pointer

SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$")
TIER_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_VERSION_SEGMENT = re.compile(r"^v[0-9]+$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_API_ID = re.compile(r"^(system|process|experience)/[a-z0-9]+(-[a-z0-9]+)*$")


@rule(
    "PSG-501",
    "server-url-matches-location",
    Severity.ERROR,
    "The major version lives in the URL (/experience/mobile-time/v2) and the file layout says which one: "
    "contracts/<layer>/<api>/v<N>.yaml is served at /<layer>/<api>/v<N>.",
)
def server_url_matches_location(context: LintContext) -> Iterator[Violation]:
    location = context.location
    if location is None:
        yield Violation("", "the file is not at contracts/<layer>/<api>/v<N>.yaml, so its URL cannot be checked")
        return
    servers = as_list(context.document.content.get("servers"))
    if len(servers) != 1:
        yield Violation(
            "/servers" if "servers" in context.document.content else "",
            f"declare exactly one server: {{url: {location.base_path}}}",
        )
        return
    url = as_mapping(servers[0]).get("url")
    if url != location.base_path:
        yield Violation("/servers/0/url", f"server url {url!r} must be {location.base_path!r} (from the file location)")


@rule(
    "PSG-502",
    "paths-relative-to-server",
    Severity.ERROR,
    "Paths are relative to the versioned server URL; a path that repeats the layer or a version segment "
    "would be served unversioned or twice-versioned.",
)
def paths_relative_to_server(context: LintContext) -> Iterator[Violation]:
    for path in as_mapping(context.document.content.get("paths")):
        segments = path.strip("/").split("/")
        if segments[0] in LAYERS:
            yield Violation(join_pointer("/paths", path), f"path {path!r} repeats the server prefix /{segments[0]}/...")
        elif any(_VERSION_SEGMENT.match(segment) for segment in segments):
            yield Violation(join_pointer("/paths", path), f"path {path!r} carries a version; the server URL does")


@rule(
    "PSG-503",
    "api-metadata",
    Severity.ERROR,
    "The catalog, the gateway and the lifecycle checks read info and its x- metadata: owner tier, lifecycle, "
    "sunset date, SLA tiers and the API id.",
)
def api_metadata(context: LintContext) -> Iterator[Violation]:
    info = as_mapping(context.document.content.get("info"))
    if not info:
        yield Violation("", "info is missing")
        return
    for field in ("title", "description"):
        if not isinstance(info.get(field), str) or not info[field].strip():
            yield Violation(_at(info, field), f"info.{field} is missing")
    version = info.get("version")
    if not isinstance(version, str) or not SEMVER.match(version):
        yield Violation(_at(info, "version"), f"info.version {version!r} is not semver")
    yield from _owner_tier(context, info)
    yield from _lifecycle(info)
    tiers = info.get("x-sla-tiers")
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, str) and TIER_NAME.match(t) for t in tiers):
        yield Violation(_at(info, "x-sla-tiers"), "x-sla-tiers must be a non-empty list of tier names")
    yield from _api_id(context, info)


def _at(info: Mapping[str, Any], key: str) -> str:
    return join_pointer("/info", key) if key in info else "/info"


def _owner_tier(context: LintContext, info: Mapping[str, Any]) -> Iterator[Violation]:
    tier = info.get("x-owner-tier")
    if tier not in LAYERS:
        yield Violation(_at(info, "x-owner-tier"), f"x-owner-tier must be one of {', '.join(LAYERS)}")
    elif context.location is not None and tier != context.location.layer:
        yield Violation(
            _at(info, "x-owner-tier"), f"x-owner-tier {tier!r} but the file is in {context.location.layer}/"
        )


def _lifecycle(info: Mapping[str, Any]) -> Iterator[Violation]:
    lifecycle = info.get("x-lifecycle")
    if lifecycle not in LIFECYCLES:
        yield Violation(_at(info, "x-lifecycle"), f"x-lifecycle must be one of {', '.join(LIFECYCLES)}")
    sunset = info.get("x-sunset")
    if sunset is None:
        if lifecycle == "deprecated":
            yield Violation(_at(info, "x-lifecycle"), "a deprecated version needs x-sunset (the date it goes away)")
        return
    if not _is_iso_date(sunset):
        yield Violation(_at(info, "x-sunset"), f"x-sunset {sunset!r} is not a date (YYYY-MM-DD)")


def _is_iso_date(value: Any) -> bool:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _api_id(context: LintContext, info: Mapping[str, Any]) -> Iterator[Violation]:
    api_id = info.get("x-api-id")
    expected = context.location.api_id if context.location is not None else None
    if not isinstance(api_id, str) or not _API_ID.match(api_id):
        yield Violation(_at(info, "x-api-id"), "x-api-id must be '<layer>/<api>' (e.g. experience/mobile-time)")
    elif expected is not None and api_id != expected:
        yield Violation(_at(info, "x-api-id"), f"x-api-id {api_id!r} but the file location says {expected!r}")


RULES = (server_url_matches_location, paths_relative_to_server, api_metadata)
