"""Version lifecycle headers: a deprecated API version says so on every answer, with its sunset and successor.

``Deprecation`` is RFC 9745 (``@<unix seconds>``), ``Sunset`` RFC 8594 (an HTTP-date), and ``Link`` names the
same resource in the successor version (``rel="successor-version"``). The dates match the contract's
``x-sunset`` and are fixed when the version is deprecated, so they live here as constants, not settings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

from runtime.untrusted import uri_path


@dataclass(frozen=True)
class Deprecated:
    base_path: str  # "/experience/mobile-time/v1"
    successor_base_path: str  # "/experience/mobile-time/v2"
    deprecated_at: dt.datetime
    sunset_at: dt.datetime

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        # ``path`` is the decoded request path: written back percent-encoded, never as the caller's raw bytes.
        successor = uri_path(self.successor_base_path + path[len(self.base_path):])
        return [
            (b"deprecation", f"@{int(self.deprecated_at.timestamp())}".encode()),
            (b"sunset", format_datetime(self.sunset_at, usegmt=True).encode()),
            (b"link", f'<{successor}>; rel="successor-version"'.encode()),
        ]


MOBILE_TIME_V1 = Deprecated(
    base_path="/experience/mobile-time/v1",
    successor_base_path="/experience/mobile-time/v2",
    deprecated_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
    sunset_at=dt.datetime(2027, 6, 1, tzinfo=dt.UTC),  # x-sunset: 2027-06-01 in contracts/.../v1.yaml
)


class LifecycleHeaders:
    """ASGI wrapper adding the headers to every answer under a deprecated version (errors and 304s too)."""

    def __init__(self, app: Any, versions: tuple[Deprecated, ...]) -> None:
        self.app = app
        self.versions = versions

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        version = next((v for v in self.versions if path == v.base_path or path.startswith(v.base_path + "/")),
                       None)
        if version is None:
            await self.app(scope, receive, send)
            return
        extra = version.headers_for(path)

        async def send_with_lifecycle(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_lifecycle)
