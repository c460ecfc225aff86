"""What every policy sees: the exchange (one call through the gateway), the answer, and the phase protocols.

A policy handler has up to three phases, each a method (policies/README.md):

- ``async access(exchange)``: before the upstream. Refuse by raising :class:`runtime.problems.ProblemError`
  (the gateway turns it into problem+json), answer without the upstream by raising :class:`Reply` (a CORS
  preflight, a cache hit), or add response headers to ``exchange.response_headers``.
- ``response(exchange, answer)``: on every answer before it is sent (the upstream's, a Reply, a refusal);
  edit ``answer`` in place, or raise ProblemError to replace it.
- ``log(exchange, entry)``: after the answer is sent, with what the audit log records (:class:`CallEntry`);
  ``exchange`` is None for a call no API matched. Queue work; never block.

Policies record what they decided in ``exchange.decisions`` (policy name -> outcome code) for the
``psgw_policy_decisions_total`` metric and the audit log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from runtime.correlation import TraceContext
from runtime.tokens import Principal

if TYPE_CHECKING:
    from policies.audit.store import CallEntry

Layer = Literal["system", "process", "experience"]
CallerLayer = Literal["app", "experience", "process", "system", "admin"]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """A registered client as the policies need it (the gateway config holds the full record)."""

    id: str
    layer: CallerLayer
    scopes: frozenset[str]
    sla_tier: str
    allowed_layers: frozenset[Layer]
    active: bool = True
    # The issuers (URLs) whose tokens may name this client; not_before: tokens issued earlier are refused.
    issuers: frozenset[str] = frozenset()
    not_before: int = 0


@dataclass(frozen=True, slots=True)
class ApiTarget:
    """The API version a call is for."""

    api_id: str  # e.g. "experience/mobile-time"
    layer: Layer
    version: int
    base_path: str  # e.g. "/experience/mobile-time/v1"
    upstream: str
    read_scopes: frozenset[str]
    write_scopes: frozenset[str]


class Reply(Exception):
    """Raised by a policy that answers the call without the upstream (e.g. a CORS preflight)."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body


@dataclass(slots=True)
class Exchange:
    method: str
    path: str  # percent-decoded (ASGI ``path``): what routes and contracts match
    raw_query: bytes
    headers: list[tuple[bytes, bytes]]
    client_addr: str
    trace: TraceContext
    api: ApiTarget
    # ASGI ``receive``: the body is read by the limits policy (size and type checked first), else by the proxy.
    receive: Any = None
    body: bytes = b""
    body_read: bool = False
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    client: ClientIdentity | None = None
    # The matched contract operation (a ``CompiledOperation``) and its path parameters, when one matched.
    operation: Any = None
    path_params: dict[str, str] = field(default_factory=dict)
    route: str | None = None  # the contract's path template once matched, e.g. /time-entries/{id}
    decisions: dict[str, str] = field(default_factory=dict)
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # Set once the call is handed to the upstream (a write that then timed out may still have happened).
    forwarded: bool = False
    # The path as the client percent-encoded it (ASGI ``raw_path``), forwarded upstream as is: the decoded path
    # may hold control characters or non-Latin-1 text that no request line can carry.
    raw_path: bytes = b""

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    @property
    def is_read(self) -> bool:
        return self.method in READ_METHODS


@dataclass(slots=True)
class Answer:
    """The answer the client is about to get; response-phase policies edit it in place."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    # True when the upstream produced it (not a refusal, a Reply or a failure at the gateway).
    from_upstream: bool = False
    # How many of the leading ``headers`` are the upstream's own (the rest were added by policies).
    upstream_headers: int = 0


class AccessPhase(Protocol):
    async def access(self, exchange: Exchange) -> None: ...


class ResponsePhase(Protocol):
    def response(self, exchange: Exchange, answer: Answer) -> None: ...


class LogPhase(Protocol):
    def log(self, exchange: Exchange | None, entry: CallEntry) -> None: ...
