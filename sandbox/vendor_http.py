"""What every sandbox vendor shares on the wire: raising an error in its own dialect, reading a JSON body, and
enforcing the vendor's API limits and authentication in its own way."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from litestar import Request
from litestar.response import Response


class VendorError(Exception):
    """An error answered in the vendor's own shape (``body`` is already in its dialect)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def vendor_error_response(_request: Any, exc: VendorError) -> Response[Any]:
    return Response(exc.body, status_code=exc.status)


async def json_object(request: Request[Any, Any, Any], invalid: Any) -> dict[str, Any]:
    """The request body as a JSON object; ``invalid(message)`` builds the vendor's error for anything else."""
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, RecursionError) as exc:  # nested past the parser's depth: as malformed as bad syntax
        raise invalid(f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    return body


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


# --- vendor API limits -----------------------------------------------------------------------------------------

LIMITS_PATH = "/_sandbox/limits"
DAY_SECONDS = 86_400.0


@dataclass
class LimitPlan:
    """A vendor's API budget: ``daily`` calls per rolling day (Salesforce) or ``per_window`` calls per
    ``window_seconds`` (answered 429 with ``Retry-After`` beyond it); 0 means no limit of that kind."""

    daily: int = 0
    per_window: int = 0
    window_seconds: float = 1.0
    used: int = 0
    # Calls in flight at once (NetSuite's concurrency governance): one more is answered 429 with Retry-After.
    concurrent: int = 0
    day_started: float = field(default_factory=time.monotonic)
    window_started: float = field(default_factory=time.monotonic)
    window_used: int = 0

    @classmethod
    def from_json(cls, wanted: dict[str, Any]) -> LimitPlan:
        return cls(daily=int(wanted.get("daily", 0)), per_window=int(wanted.get("per_window", 0)),
                   window_seconds=float(wanted.get("window_seconds", 1.0)), used=int(wanted.get("used", 0)),
                   concurrent=int(wanted.get("concurrent", 0)))

    def view(self) -> dict[str, Any]:
        return {"daily": self.daily, "per_window": self.per_window, "window_seconds": self.window_seconds,
                "used": self.used, "concurrent": self.concurrent}


class VendorLimits:
    """ASGI middleware enforcing a vendor's API limits in its own way (see each ``Dialect``).

    ``PUT /_sandbox/limits`` with ``{"daily", "per_window", "window_seconds", "used"}`` replaces the plan (tests set
    small limits), ``DELETE`` restores the start-up plan, ``GET`` shows it. Start-up plan from the environment:
    ``PSGW_SANDBOX_DAILY_API_LIMIT`` (default: the dialect's, 0 for none; the day restarts 24 h after it began) and
    ``PSGW_SANDBOX_RATE_LIMIT`` (``<calls>/<seconds>``, default none) and ``PSGW_SANDBOX_CONCURRENCY_LIMIT`` (calls in
    flight at once, default none).
    """

    def __init__(self, app: Any, dialect: LimitDialect, initial: LimitPlan) -> None:
        self.app = app
        self.dialect = dialect
        self.initial = initial
        self.plan = LimitPlan(**initial.view())
        self.in_flight = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/readyz"):
            await self.app(scope, receive, send)
            return
        if scope["path"] == LIMITS_PATH:
            await self._admin(scope, receive, send)
            return
        if self.plan.concurrent and self.in_flight >= self.plan.concurrent:
            await _reply(send, 429, self.dialect.too_many(1), [(b"retry-after", b"1")])
            return
        self.in_flight += 1
        try:
            await self._limited(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _limited(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        plan = self.plan
        now = time.monotonic()
        if plan.per_window:
            if now - plan.window_started >= plan.window_seconds:
                plan.window_started, plan.window_used = now, 0
            if plan.window_used >= plan.per_window:
                retry_after = max(1, math.ceil(plan.window_seconds - (now - plan.window_started)))
                await _reply(send, 429, self.dialect.too_many(retry_after),
                             [(b"retry-after", str(retry_after).encode())])
                return
            plan.window_used += 1
        extra: list[tuple[bytes, bytes]] = []
        if plan.daily:
            if now - plan.day_started >= DAY_SECONDS:
                plan.day_started, plan.used = now, 0
            if plan.used >= plan.daily:
                await _reply(send, 403, self.dialect.daily_exhausted(), self.dialect.usage_headers(plan))
                return
            plan.used += 1
            extra = self.dialect.usage_headers(plan)
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_usage(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_usage)

    async def _admin(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope["method"]
        if method == "DELETE":
            self.plan = LimitPlan(**self.initial.view())
        elif method in ("PUT", "POST"):
            try:
                self.plan = LimitPlan.from_json(json.loads(await _body(receive) or b"{}"))
            except (ValueError, TypeError, AttributeError) as exc:
                await _reply(send, 400, {"error": "BAD_LIMIT_PLAN", "message": str(exc)})
                return
        elif method != "GET":
            await _reply(send, 405, {"error": "METHOD_NOT_ALLOWED"})
            return
        await _reply(send, 200, self.plan.view())


class LimitDialect:
    """How a vendor says "too many calls" (429 + Retry-After, body in its error shape) and reports usage."""

    def __init__(self, too_many: Any, daily_exhausted: Any = None, default_daily: int = 0) -> None:
        self._too_many = too_many
        self._daily = daily_exhausted
        self.default_daily = default_daily

    def too_many(self, retry_after: int) -> Any:
        return self._too_many(retry_after)

    def daily_exhausted(self) -> Any:
        return self._daily() if self._daily else self._too_many(0)

    def usage_headers(self, plan: LimitPlan) -> list[tuple[bytes, bytes]]:
        if self._daily is None:
            return []
        # Salesforce REST API Developer Guide, "Limit Info Header": every response says the org's usage.
        return [(b"sforce-limit-info", f"api-usage={plan.used}/{plan.daily}".encode())]


def initial_limits(environ: dict[str, str], dialect: LimitDialect) -> LimitPlan:
    per_window, _, seconds = (environ.get("PSGW_SANDBOX_RATE_LIMIT") or "0/1").partition("/")
    daily = environ.get("PSGW_SANDBOX_DAILY_API_LIMIT")
    return LimitPlan(daily=int(daily) if daily else dialect.default_daily, per_window=int(per_window),
                     window_seconds=float(seconds or 1),
                     concurrent=int(environ.get("PSGW_SANDBOX_CONCURRENCY_LIMIT") or 0))


async def _reply(send: Any, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


# --- vendor authentication -------------------------------------------------------------------------------------

AUTH_PATH = "/_sandbox/auth"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SALESFORCE_AUDIENCE = "https://login.salesforce.com"


@dataclass
class AuthDialect:
    """How a vendor authenticates API calls: its token endpoint, its grant, and its 401 body for a missing,
    unknown or expired bearer token."""

    grant_path: str
    grant: str  # "client_credentials" or JWT_BEARER
    unauthorized: Any  # () -> body
    # Salesforce's token answer carries no expires_in (the session lasts until it is refused with 401).
    says_expiry: bool = True
    # Client credentials authenticated by a signed client assertion instead of a secret (NetSuite's M2M flow):
    # (form, config, token URL) -> why it is refused ("" when good).
    assertion_check: Any = None


@dataclass
class AuthConfig:
    """The one integration client this sandbox tenant knows (from the launcher's generated credentials)."""

    client_id: str
    client_secret: str = ""
    username: str = ""
    public_key_pem: str = ""
    ttl_seconds: float = 3600.0
    # The id of the certificate mapped to the integration (NetSuite M2M: the client assertion's ``kid``).
    certificate_id: str = ""

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> AuthConfig | None:
        client_id = environ.get("PSGW_SANDBOX_CLIENT_ID", "")
        if not client_id:
            return None
        key_file = environ.get("PSGW_SANDBOX_JWT_PUBLIC_KEY_FILE", "")
        return cls(client_id=client_id, client_secret=environ.get("PSGW_SANDBOX_CLIENT_SECRET", ""),
                   username=environ.get("PSGW_SANDBOX_USERNAME", ""),
                   public_key_pem=Path(key_file).read_text() if key_file else "",
                   ttl_seconds=float(environ.get("PSGW_SANDBOX_TOKEN_TTL_SECONDS") or 3600),
                   certificate_id=environ.get("PSGW_SANDBOX_CERTIFICATE_ID", ""))


class VendorAuth:
    """ASGI middleware: the vendor's OAuth 2.0 token endpoint, and a bearer token required on every API call.

    Client credentials (RFC 6749 section 4.4; Workday, NetSuite, Dynamics 365 and SAP integrations): the client
    authenticates with HTTP Basic (or ``client_id``/``client_secret`` form fields) and gets a token with
    ``expires_in``. JWT bearer (RFC 7523; Salesforce "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration"):
    ``assertion`` is an RS256 JWT with ``iss`` the consumer key, ``sub`` the integration user, ``aud``
    ``https://login.salesforce.com`` and an ``exp`` at most minutes ahead, signed by the key whose certificate the
    connected app holds. ``GET /_sandbox/auth`` counts tokens issued; ``DELETE`` expires every issued token (a test
    sees the connector fetch a new one).
    """

    def __init__(self, app: Any, dialect: AuthDialect, config: AuthConfig | None) -> None:
        self.app = app
        self.dialect = dialect
        self.config = config
        self.tokens: dict[str, float] = {}
        self.issued = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if self.config is None or scope["type"] != "http" or path in ("/healthz", "/readyz") or (
                path.startswith("/_sandbox/") and path != AUTH_PATH):
            await self.app(scope, receive, send)
            return
        if path == AUTH_PATH:
            if scope["method"] == "DELETE":
                self.tokens.clear()
            await _reply(send, 200, {"issued": self.issued, "active": len(self.tokens)})
            return
        if path == self.dialect.grant_path and scope["method"] == "POST":
            status, body = self._token(scope, await _body(receive))
            await _reply(send, status, body)
            return
        authorization = _header(scope, b"authorization")
        token = authorization[7:] if authorization[:7].lower() == "bearer " else ""
        expires_at = self.tokens.get(token)
        if expires_at is None or expires_at < time.monotonic():
            self.tokens.pop(token, None)
            await _reply(send, 401, self.dialect.unauthorized(),
                         [(b"www-authenticate", b'Bearer error="invalid_token"')])
            return
        await self.app(scope, receive, send)

    def _token(self, scope: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
        config = self.config
        assert config is not None
        form = {k: v[-1] for k, v in parse_qs(raw.decode("latin-1")).items()}
        if form.get("grant_type") != self.dialect.grant:
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        if self.dialect.grant == JWT_BEARER:
            refusal = _jwt_refusal(form.get("assertion", ""), config)
            if refusal:
                return 400, {"error": "invalid_grant", "error_description": refusal}
        elif self.dialect.assertion_check is not None:
            token_url = f"http://{_header(scope, b'host')}{scope.get('path', '')}"
            refusal = self.dialect.assertion_check(form, config, token_url)
            if refusal:
                return 400, {"error": "invalid_client", "error_description": refusal}
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            basic = _header(scope, b"authorization")
            if basic[:6].lower() == "basic ":
                try:
                    client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                except (ValueError, binascii.Error):
                    client_id = secret = ""
            if not (hmac.compare_digest(client_id, config.client_id)
                    and hmac.compare_digest(secret, config.client_secret)):
                return 401, {"error": "invalid_client", "error_description": "client authentication failed"}
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.monotonic() + config.ttl_seconds
        self.issued += 1
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.dialect.says_expiry:
            body["expires_in"] = int(config.ttl_seconds)
        return 200, body


def _jwt_refusal(assertion: str, config: AuthConfig) -> str:
    """Why Salesforce would refuse this JWT bearer assertion ("" when it is good)."""
    try:
        token = jwt.decode(assertion, RSAKey.import_key(config.public_key_pem), algorithms=["RS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": config.client_id}, sub={"essential": True, "value": config.username},
            aud={"essential": True, "value": SALESFORCE_AUDIENCE}, exp={"essential": True},
        ).validate(token.claims)
    except JoseError as exc:
        return f"invalid assertion: {exc.description or exc.error}"
    except ValueError:
        return "invalid assertion"
    if float(token.claims["exp"]) > time.time() + 300:
        return "expiration is too far in the future"
    return ""


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


async def _body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body
