"""Correlation ids and W3C trace context, carried through every hop.

The gateway creates them when a caller sends none; every tier takes them from the incoming request,
keeps them in a context variable for logs, audit and outbound calls, and echoes them on the response.
"""

from __future__ import annotations

import contextvars
import random
import re

import msgspec

CORRELATION_HEADER = "x-correlation-id"
TRACEPARENT_HEADER = "traceparent"

_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class TraceContext(msgspec.Struct, frozen=True, gc=False):
    """A hop's ids (immutable; built on every call served and made, so a Struct: a frozen dataclass's ``__init__``
    goes through ``object.__setattr__`` field by field)."""

    correlation_id: str
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """The context for an outbound call: same trace, new span."""
        return TraceContext(self.correlation_id, self.trace_id, new_span_id(), self.flags)


def new_trace_id() -> str:
    # Ids must be unique, not secret: the PRNG (as OpenTelemetry's own id generator) costs no system call.
    return f"{random.getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    return f"{random.getrandbits(64) or 1:016x}"


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("psgw_trace", default=None)


def current() -> TraceContext | None:
    return _current.get()


def current_correlation_id() -> str | None:
    ctx = _current.get()
    return ctx.correlation_id if ctx else None


def current_trace_id() -> str | None:
    ctx = _current.get()
    return ctx.trace_id if ctx else None


def set_current(ctx: TraceContext | None) -> contextvars.Token[TraceContext | None]:
    return _current.set(ctx)


def reset_current(token: contextvars.Token[TraceContext | None]) -> None:
    _current.reset(token)


def from_headers(correlation_id: str | None, traceparent: str | None) -> TraceContext:
    """Adopt the caller's ids when well formed; otherwise start new ones (never trust malformed input)."""
    trace_id = span_id = None
    flags = "01"
    if traceparent:
        # As sent by our own hops it matches as it is; the normalised form only for what others send.
        match = _TRACEPARENT_RE.match(traceparent) or _TRACEPARENT_RE.match(traceparent.strip().lower())
        if match and match.group(1) != "0" * 32 and match.group(2) != "0" * 16:
            trace_id, _parent_span, flags = match.groups()
    if trace_id is None:
        trace_id = new_trace_id()
    span_id = new_span_id()
    if not correlation_id or not _CORRELATION_RE.match(correlation_id):
        # One id for humans to quote: the trace id, so logs, audit and traces agree.
        correlation_id = trace_id
    return TraceContext(correlation_id, trace_id, span_id, flags)


def resume(correlation_id: str | None, trace_id: str | None) -> TraceContext:
    """The context of work done later on behalf of a request (a queued job): its correlation and trace ids
    when they were recorded (and well formed), a new span; new ids otherwise."""
    traceparent = f"00-{trace_id}-{new_span_id()}-01" if trace_id else None
    return from_headers(correlation_id, traceparent)


CORRELATION_WIRE = CORRELATION_HEADER.encode()
TRACEPARENT_WIRE = TRACEPARENT_HEADER.encode()


def outbound_wire_headers() -> list[tuple[bytes, bytes]]:
    """The ids an outbound call carries, as (name, value) bytes for the wire: the same correlation id and trace,
    a new span (:meth:`TraceContext.child`). Sent unchecked: the correlation id passed ``_CORRELATION_RE`` (or is a
    trace id) and the trace context is hex, so neither can carry a line break."""
    ctx = _current.get()
    if ctx is None:
        return []
    return [(CORRELATION_WIRE, ctx.correlation_id.encode()), (TRACEPARENT_WIRE, ctx.child().traceparent.encode())]
