"""CORS for browser callers of experience APIs: preflights answered at the gateway, allowed origins echoed.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) carries no credentials, so this policy runs
before authentication and answers it itself. Other calls from an allowed origin get the CORS response
headers; from any other origin they get none, so the browser withholds the response.
"""

from __future__ import annotations

import msgspec

from policies.exchange import ApiTarget, Exchange, Layer, Reply
from policies.registry import BuildContext, PolicySpec
from runtime.problems import ProblemError


class CorsConfig(msgspec.Struct, kw_only=True, frozen=True):
    layers: list[Layer] = msgspec.field(default_factory=lambda: ["experience"])
    # Exact origins ("https://app.example.com"), or "*" for any origin (never with credentials).
    allowed_origins: list[str] = []
    allowed_methods: list[str] = msgspec.field(default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE"])
    allowed_headers: list[str] = msgspec.field(default_factory=lambda: [
        "authorization", "content-type", "if-match", "if-none-match", "idempotency-key", "traceparent",
        "x-api-key", "x-correlation-id"])
    exposed_headers: list[str] = msgspec.field(default_factory=lambda: [
        "etag", "location", "ratelimit", "ratelimit-policy", "retry-after", "x-correlation-id"])
    max_age_seconds: int = 600
    allow_credentials: bool = False

    def __post_init__(self) -> None:
        if self.allow_credentials and "*" in self.allowed_origins:
            raise ValueError("cors: allow_credentials cannot be combined with the '*' origin")

    def selects(self, api: ApiTarget) -> bool:
        return api.layer in self.layers


class CorsRejected(ProblemError):
    status = 403
    slug = "cors-rejected"
    title = "Cross-origin request refused"


class Cors:
    name = "cors"

    def __init__(self, config: CorsConfig) -> None:
        self.any_origin = "*" in config.allowed_origins
        self.origins = frozenset(o.rstrip("/").lower() for o in config.allowed_origins if o != "*")
        self.methods = frozenset(m.upper() for m in config.allowed_methods)
        self.headers = frozenset(h.lower() for h in config.allowed_headers)
        self.credentials = config.allow_credentials
        self.preflight_headers = [
            (b"access-control-allow-methods", ", ".join(sorted(self.methods)).encode()),
            (b"access-control-allow-headers", ", ".join(sorted(self.headers)).encode()),
            (b"access-control-max-age", str(config.max_age_seconds).encode()),
        ]
        self.expose = (b"access-control-expose-headers", ", ".join(config.exposed_headers).encode())

    def _allowed(self, origin: str) -> bool:
        return self.any_origin or origin.rstrip("/").lower() in self.origins

    def _origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"access-control-allow-origin", b"*" if self.any_origin and not self.credentials
                    else origin.encode("latin-1")), (b"vary", b"Origin")]
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    async def access(self, exchange: Exchange) -> None:
        origin = exchange.header(b"origin")
        if origin is None:
            return
        requested = exchange.header(b"access-control-request-method")
        if exchange.method == "OPTIONS" and requested is not None:
            self._preflight(exchange, origin, requested)
        if self._allowed(origin):
            exchange.response_headers.extend(self._origin_headers(origin))
            exchange.response_headers.append(self.expose)
            exchange.decisions[self.name] = "ok"
        else:
            exchange.decisions[self.name] = "origin_not_allowed"

    def _preflight(self, exchange: Exchange, origin: str, requested: str) -> None:
        if not self._allowed(origin):
            exchange.decisions[self.name] = "origin_not_allowed"
            raise CorsRejected(f"origin {origin!r} may not call {exchange.api.base_path}", reason="origin_not_allowed")
        if requested.upper() not in self.methods:
            exchange.decisions[self.name] = "method_not_allowed"
            raise CorsRejected(f"method {requested} is not allowed cross-origin", reason="method_not_allowed")
        asked = exchange.header(b"access-control-request-headers") or ""
        extra = sorted({h.strip().lower() for h in asked.split(",") if h.strip()} - self.headers)
        if extra:
            exchange.decisions[self.name] = "header_not_allowed"
            raise CorsRejected(f"header {extra[0]!r} is not allowed cross-origin", reason="header_not_allowed")
        exchange.decisions[self.name] = "preflight"
        raise Reply(204, self._origin_headers(origin) + self.preflight_headers)


def _build(config: CorsConfig, ctx: BuildContext) -> Cors | None:
    if not config.selects(ctx.api):
        return None
    return ctx.once(("cors", id(config)), lambda: Cors(config))


# Before authentication: a preflight carries no credentials.
POLICY = PolicySpec(name="cors", config=CorsConfig, priority=2000, build=_build, enabled_by_default=True,
                    summary="answers CORS preflights and adds the CORS headers for allowed origins")
