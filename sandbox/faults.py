"""Fault injection for resilience tests: every sandbox answers ``/_sandbox/faults``.

``PUT /_sandbox/faults`` with any of:
  ``latency_ms``       added to every vendor call
  ``error_rate``       0..1, share of calls answered with ``error_status`` (default 503)
  ``timeout``          true: hold every call for ``hang_seconds`` (default 30) before answering
  ``outage_seconds``   refuse every call with 503 for this many seconds from now
  ``fail_next``        answer the next N calls with ``error_status``
  ``only_methods``     limit faults to these HTTP methods (e.g. ["POST"]); all methods when absent
``DELETE /_sandbox/faults`` clears them; ``GET`` shows them with counters of what was injected.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

Scope = dict[str, Any]
ADMIN_PATH = "/_sandbox/faults"


@dataclass
class FaultPlan:
    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 503
    timeout: bool = False
    hang_seconds: float = 30.0
    outage_until: float = 0.0
    fail_next: int = 0
    only_methods: list[str] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=lambda: {"latency": 0, "error": 0, "timeout": 0,
                                                              "outage": 0})

    def view(self) -> dict[str, Any]:
        body = asdict(self)
        body["outage_remaining_seconds"] = max(0.0, round(self.outage_until - time.monotonic(), 3))
        body.pop("outage_until")
        return body


class FaultInjector:
    """ASGI middleware: applies the fault plan to vendor calls, and serves the admin endpoint."""

    def __init__(self, app: Any, system: str) -> None:
        self.app = app
        self.system = system
        self.plan = FaultPlan()
        self._random = random.Random()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == ADMIN_PATH:
            await self._admin(scope, receive, send)
            return
        if path in ("/healthz", "/readyz"):
            await self._reply(send, 200, {"status": "ok", "service": f"sandbox-{self.system}"})
            return
        plan = self.plan
        if plan.only_methods and scope["method"] not in plan.only_methods:
            await self.app(scope, receive, send)
            return
        if plan.outage_until > time.monotonic():
            plan.injected["outage"] += 1
            await self._reply(send, 503, {"error": "SERVICE_UNAVAILABLE", "message": f"{self.system} outage"})
            return
        if plan.latency_ms:
            plan.injected["latency"] += 1
            await asyncio.sleep(plan.latency_ms / 1000)
        if plan.timeout:
            plan.injected["timeout"] += 1
            await asyncio.sleep(plan.hang_seconds)
        if plan.fail_next > 0 or (plan.error_rate and self._random.random() < plan.error_rate):
            plan.fail_next = max(0, plan.fail_next - 1)
            plan.injected["error"] += 1
            await self._reply(send, plan.error_status, {"error": "INJECTED_FAULT",
                                                        "message": f"{self.system} injected failure"})
            return
        await self.app(scope, receive, send)

    async def _admin(self, scope: Scope, receive: Any, send: Any) -> None:
        method = scope["method"]
        if method == "DELETE":
            self.plan = FaultPlan()
        elif method in ("PUT", "POST"):
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                wanted = json.loads(body or b"{}")
                plan = FaultPlan(
                    latency_ms=int(wanted.get("latency_ms", 0)),
                    error_rate=float(wanted.get("error_rate", 0.0)),
                    error_status=int(wanted.get("error_status", 503)),
                    timeout=bool(wanted.get("timeout", False)),
                    hang_seconds=float(wanted.get("hang_seconds", 30.0)),
                    outage_until=time.monotonic() + float(wanted.get("outage_seconds", 0)),
                    fail_next=int(wanted.get("fail_next", 0)),
                    only_methods=[str(m).upper() for m in wanted.get("only_methods", [])],
                )
            except (ValueError, TypeError, AttributeError) as exc:
                await self._reply(send, 400, {"error": "BAD_FAULT_PLAN", "message": str(exc)})
                return
            self.plan = plan
        elif method != "GET":
            await self._reply(send, 405, {"error": "METHOD_NOT_ALLOWED"})
            return
        await self._reply(send, 200, self.plan.view())

    @staticmethod
    async def _reply(send: Any, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
