"""The running stack as a test uses it: its users, their tokens and clients; and the session's event check."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from contracts.toolchain.asyncapi import EventSchemas, load_asyncapi
from gateway import config as gateway_config
from gateway.internal_tokens import InternalTokens
from gateway.issuer import Issuer
from gateway.launcher import REPO_ROOT, Ports, ServiceSpec, Stack
from runtime.tokens import Principal

DEMO_CONSULTANT = "wrk_e1001"
DEMO_MANAGER = "wrk_e1002"  # manages prj_4001, where the demo consultant works
# Events a test writes malformed on purpose (to make a dead letter) carry this correlation id prefix.
DELIBERATELY_MALFORMED = "test-malformed-"


class RunningStack:
    """The started stack plus what a test needs to act as one of its users."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.gateway_url
        env = {**os.environ, "PSGW_ISSUER_URL": stack.gateway_url}
        self.config = gateway_config.load(stack.config_file, env)
        self.issuer = Issuer(self.config.issuer, stack.data_dir)

    def token(self, client_id: str, *, subject: str | None = None, scopes: list[str] | None = None,
              ttl: int | None = None) -> str:
        client = next(c for c in self.config.clients if c.id == client_id)
        return self.issuer.mint(client, scopes, subject=subject, ttl_seconds=ttl)[0]

    def internal_token(self, client_id: str, *, subject: str | None = None) -> str:
        """What the gateway sends a tier for this caller: the tiers accept only the gateway's internal tokens."""
        client = next(c for c in self.config.clients if c.id == client_id)
        principal = Principal(subject=subject or client.id, client_id=client.id, scopes=frozenset(client.scopes),
                              issuer=self.config.issuer.issuer, expires_at=int(time.time()) + 300, claims={})
        return InternalTokens(self.issuer, self.config.issuer).mint(principal)[0]

    def client(self, client_id: str | None = None, *, subject: str | None = None,
               scopes: list[str] | None = None) -> httpx.Client:
        if client_id is None:
            return httpx.Client(base_url=self.url, timeout=30.0)
        minted_at, header = time.monotonic(), "Bearer " + self.token(client_id, subject=subject, scopes=scopes)
        client = httpx.Client(base_url=self.url, headers={"Authorization": header}, timeout=30.0)

        def renew_before_expiry(request: httpx.Request) -> None:
            # A session-scoped client outlives its token (900 s) when a worker's tests span longer than that: its
            # own token is renewed at half-life; a request carrying another Authorization (a test's) is left be.
            nonlocal minted_at, header
            if request.headers.get("Authorization") != header:
                return
            if time.monotonic() - minted_at > self.config.issuer.token_ttl_seconds / 2:
                minted_at, header = time.monotonic(), "Bearer " + self.token(client_id, subject=subject, scopes=scopes)
                client.headers["Authorization"] = request.headers["Authorization"] = header

        client.event_hooks["request"].append(renew_before_expiry)
        return client


def events_breaking_their_schema(stack: RunningStack) -> list[dict[str, object]]:
    """Every event the process tier published in this session, checked against its AsyncAPI payload schema:
    a producer whose payload drifted from the contract fails the session. Events a test made malformed on purpose
    are left out."""
    schemas = EventSchemas(load_asyncapi())
    drifted: list[dict[str, object]] = []
    after = 0
    with stack.client("experience-tier") as client:
        while True:
            try:
                response = client.get("/process/events/v1/events", params={"after": after, "limit": 500})
            except httpx.HTTPError as exc:  # a test left the gateway down: nothing more to read
                print(f"events not checked after position {after}: {exc!r}")
                return drifted
            if response.status_code != 200:  # a test left the process tier down: nothing more to read
                print(f"events not checked after position {after}: {response.status_code} {response.text[:200]}")
                return drifted
            page = response.json()
            for event in page["items"]:
                if str(event.get("correlation_id") or "").startswith(DELIBERATELY_MALFORMED):
                    continue
                if errors := schemas.errors(event):
                    drifted.append({"id": event["id"], "type": event["type"], "errors": errors})
            if page["next_cursor"] is None:
                return drifted
            after = page["last_position"]


def sandbox_url(stack: RunningStack, system: str) -> str:
    """The vendor sandbox behind a system API, for a test that checks the vendor's side directly."""
    return stack.stack.url(f"sandbox-{system}")


def print_logs(data_dir: Path, tail: int = 4000) -> None:
    """The end of every process's log, for a run that failed (pytest shows what a failing test printed)."""
    for log in sorted((data_dir / "logs").glob("*.log")):
        print(f"==== {log.name}\n{log.read_text()[-tail:]}")


@contextmanager
def started(stack: Stack, *, timeout: float) -> Iterator[RunningStack]:
    """The stack started and ready for the body, stopped after it; its logs printed when anything in it fails."""
    stack.start()
    try:
        stack.wait_ready(timeout=timeout)
        yield RunningStack(stack)
    except BaseException:
        print_logs(stack.data_dir)
        raise
    finally:
        stack.stop()


@dataclass
class SystemTierStack(Stack):
    """Only what a system API call passes through (the gateway, the system tier, the sandbox vendors): the process
    and experience tiers play no part in the system tier's contract."""

    def specs(self) -> list[ServiceSpec]:
        return [s for s in super().specs() if s.name not in ("process", "experience")]


@contextmanager
def system_tier_on(tmp_path_factory: pytest.TempPathFactory, backend: dict[str, str]) -> Iterator[RunningStack]:
    """The system tier on another vendor backend (``{"PSGW_ERP_BACKEND": "netsuite"}``, say), with its sandbox
    speaking that vendor's dialect."""
    data_dir = tmp_path_factory.mktemp("psgw-" + "-".join(backend.values()))
    stack = SystemTierStack(data_dir=data_dir, ports=Ports.free(), config_file=REPO_ROOT / "gateway.yaml",
                            extra_env=backend)
    with started(stack, timeout=180) as running:
        yield running
