"""Version lifecycle headers: every answer of a deprecated API version says so, with its sunset and successor.

``Deprecation`` is RFC 9745 (``@<unix seconds>``), ``Sunset`` RFC 8594 (an HTTP-date), and ``Link`` names the
same resource in the successor version (``rel="successor-version"``): the highest published version of the same
API above this one. The contract is the one home of the dates: its ``info`` says ``x-lifecycle: deprecated``,
``x-deprecated-at`` and ``x-sunset`` (YYYY-MM-DD, midnight UTC). A binding in gateway.yaml may set them for one
API version instead (``deprecated_at``, ``sunset``), e.g. to announce a deprecation before the contract ships.
The headers go on every answer of that version, refusals and cache hits included (a response-phase policy).
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime
from typing import Any

import msgspec

from policies.exchange import Answer, Exchange
from policies.registry import BuildContext, PolicySpec
from runtime.untrusted import uri_path


class LifecycleConfig(msgspec.Struct, kw_only=True, frozen=True):
    # None: the contract's x-deprecated-at / x-sunset. Either set here marks the version deprecated.
    deprecated_at: dt.date | None = None
    sunset: dt.date | None = None
    # Link the same resource in the successor version.
    link_successor: bool = True


def _midnight(value: Any, what: str, api: str) -> dt.datetime:
    try:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"lifecycle of {api}: {what} {value!r} is not a date (YYYY-MM-DD)") from exc
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


class Lifecycle:
    name = "lifecycle"

    def __init__(
        self, base_path: str, deprecated_at: dt.datetime, sunset: dt.datetime, successor_base_path: str | None
    ) -> None:
        self.base_path = base_path
        self.successor_base_path = successor_base_path
        self.fixed = [
            (b"deprecation", f"@{int(deprecated_at.timestamp())}".encode()),
            (b"sunset", format_datetime(sunset, usegmt=True).encode()),
        ]

    def response(self, exchange: Exchange, answer: Answer) -> None:
        answer.headers.extend(self.fixed)
        if self.successor_base_path is not None:
            # The decoded request path, written back percent-encoded: never the caller's raw bytes in a header.
            successor = uri_path(self.successor_base_path + exchange.path[len(self.base_path) :])
            answer.headers.append((b"link", f'<{successor}>; rel="successor-version"'.encode()))


def _build(config: LifecycleConfig, ctx: BuildContext) -> Lifecycle | None:
    api = ctx.api
    info: dict[str, Any] = getattr(ctx.contract, "info", None) or {}
    deprecated = (
        info.get("x-lifecycle") == "deprecated" or config.deprecated_at is not None or config.sunset is not None
    )
    if not deprecated:
        return None
    deprecated_at = config.deprecated_at or info.get("x-deprecated-at")
    sunset = config.sunset or info.get("x-sunset")
    if deprecated_at is None or sunset is None:
        raise ValueError(
            f"{api.base_path} is deprecated but its contract names no x-deprecated-at and x-sunset "
            "(or a lifecycle binding no deprecated_at and sunset)"
        )
    successors = sorted(
        other.version for other in ctx.services.apis if other.api_id == api.api_id and other.version > api.version
    )
    successor = None
    if config.link_successor and successors:
        successor = f"/{api.api_id}/v{successors[-1]}"
    return Lifecycle(
        api.base_path,
        _midnight(deprecated_at, "x-deprecated-at", api.base_path),
        _midnight(sunset, "x-sunset", api.base_path),
        successor,
    )


# Only a response phase. Its priority sits below the response cache's so a cached answer never holds the headers.
POLICY = PolicySpec(
    name="lifecycle",
    config=LifecycleConfig,
    priority=50,
    build=_build,
    enabled_by_default=True,
    summary="Deprecation, Sunset and successor Link headers on every answer of a deprecated version",
)
