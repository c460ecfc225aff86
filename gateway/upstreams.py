"""Upstream connection pools: one per tier, timeouts always set, failures named after the tier."""

from __future__ import annotations

import httpx

from gateway.config import UpstreamConfig
from runtime.problems import ProblemError

# Hop-by-hop headers (RFC 9110 section 7.6.1) and ones the gateway sets itself.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"host", b"content-length", b"x-correlation-id", b"traceparent",
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
})


# Upstream response headers the gateway's own server writes.
RESPONSE_SKIP = HOP_BY_HOP | {b"date", b"server"}


class UpstreamUnavailable(ProblemError):
    status = 503
    slug = "upstream-unavailable"
    title = "Upstream unavailable"


class UpstreamTimeout(ProblemError):
    status = 504
    slug = "upstream-timeout"
    title = "Upstream timeout"


class Upstream:
    def __init__(self, name: str, config: UpstreamConfig) -> None:
        self.name = name
        self.config = config
        self.client = httpx.AsyncClient(
            base_url=config.url.rstrip("/"),
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=config.max_connections,
                                max_keepalive_connections=config.max_connections),
            follow_redirects=False,
        )

    async def send(self, method: str, target: str, headers: list[tuple[bytes, bytes]],
                   body: bytes) -> httpx.Response:
        try:
            return await self.client.request(method, target, headers=headers, content=body or None)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"the {self.name} tier did not answer within {self.config.timeout_seconds:g}s", upstream=self.name
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"the {self.name} tier is unavailable", upstream=self.name) from exc

    async def aclose(self) -> None:
        await self.client.aclose()
