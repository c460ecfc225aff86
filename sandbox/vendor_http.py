"""What every sandbox vendor shares on the wire: raising an error in its own dialect, reading a JSON body, and
enforcing the vendor's API limits in its own way."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

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
    except ValueError as exc:
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


@dataclass
class LimitPlan:
    """A vendor's API budget: ``daily`` calls per rolling day (Salesforce) or ``per_window`` calls per
    ``window_seconds`` (answered 429 with ``Retry-After`` beyond it); 0 means no limit of that kind."""

    daily: int = 0
    per_window: int = 0
    window_seconds: float = 1.0
    used: int = 0
    window_started: float = field(default_factory=time.monotonic)
    window_used: int = 0

    @classmethod
    def from_json(cls, wanted: dict[str, Any]) -> LimitPlan:
        return cls(daily=int(wanted.get("daily", 0)), per_window=int(wanted.get("per_window", 0)),
                   window_seconds=float(wanted.get("window_seconds", 1.0)), used=int(wanted.get("used", 0)))

    def view(self) -> dict[str, Any]:
        return {"daily": self.daily, "per_window": self.per_window, "window_seconds": self.window_seconds,
                "used": self.used}


class VendorLimits:
    """ASGI middleware enforcing a vendor's API limits in its own way (see each ``Dialect``).

    ``PUT /_sandbox/limits`` with ``{"daily", "per_window", "window_seconds", "used"}`` replaces the plan (tests set
    small limits), ``DELETE`` restores the start-up plan, ``GET`` shows it. Start-up plan from the environment:
    ``PSGW_SANDBOX_DAILY_API_LIMIT`` and ``PSGW_SANDBOX_RATE_LIMIT`` (``<calls>/<seconds>``).
    """

    def __init__(self, app: Any, dialect: LimitDialect, initial: LimitPlan) -> None:
        self.app = app
        self.dialect = dialect
        self.initial = initial
        self.plan = LimitPlan(**initial.view())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/readyz"):
            await self.app(scope, receive, send)
            return
        if scope["path"] == LIMITS_PATH:
            await self._admin(scope, receive, send)
            return
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
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                self.plan = LimitPlan.from_json(json.loads(body or b"{}"))
            except (ValueError, TypeError, AttributeError) as exc:
                await _reply(send, 400, {"error": "BAD_LIMIT_PLAN", "message": str(exc)})
                return
        elif method != "GET":
            await _reply(send, 405, {"error": "METHOD_NOT_ALLOWED"})
            return
        await _reply(send, 200, self.plan.view())


class LimitDialect:
    """How a vendor says "too many calls" (429 + Retry-After, body in its error shape) and reports usage."""

    def __init__(self, too_many: Any, daily_exhausted: Any = None) -> None:
        self._too_many = too_many
        self._daily = daily_exhausted

    def too_many(self, retry_after: int) -> Any:
        return self._too_many(retry_after)

    def daily_exhausted(self) -> Any:
        return self._daily() if self._daily else self._too_many(0)

    def usage_headers(self, plan: LimitPlan) -> list[tuple[bytes, bytes]]:
        if self._daily is None:
            return []
        # Salesforce REST API Developer Guide, "Limit Info Header": every response says the org's usage.
        return [(b"sforce-limit-info", f"api-usage={plan.used}/{plan.daily}".encode())]


def initial_limits(environ: dict[str, str]) -> LimitPlan:
    per_window, _, seconds = (environ.get("PSGW_SANDBOX_RATE_LIMIT") or "0/1").partition("/")
    return LimitPlan(daily=int(environ.get("PSGW_SANDBOX_DAILY_API_LIMIT") or 0), per_window=int(per_window),
                     window_seconds=float(seconds or 1))


async def _reply(send: Any, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})
