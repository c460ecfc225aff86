"""OpenTelemetry spans for every hop, exported over OTLP/HTTP when ``PSGW_OTLP_ENDPOINT`` is set.

The ids are the runtime's own (``runtime.correlation``): each hop already adopts the caller's W3C ``traceparent``
and sends a child one on every outbound call, and logs, audit entries and events carry that trace id. Spans are
recorded when a call ends, with those ids pinned (the SDK's id generator hands out the id the runtime chose),
so a span tree in the collector is exactly the chain of ``traceparent`` headers on the wire:

    gateway (server) -> tier (server) -> tier -> gateway (client) -> gateway (server) -> next tier (server) ...

With no endpoint configured nothing is set up: :func:`enabled` is False and the hooks are never called, so the
hot path pays one boolean test.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from runtime.correlation import TraceContext

log = logging.getLogger("runtime.tracing")

_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class TracingSettings(msgspec.Struct, kw_only=True):
    """Read once at start (``PSGW_OTLP_ENDPOINT`` ...) by :func:`runtime.serve.serve` for every process."""

    # Base URL of an OTLP/HTTP collector (``/v1/traces`` is added unless the URL ends with it); empty: no tracing.
    otlp_endpoint: str = ""
    otlp_timeout_seconds: float = 5.0
    # How long finished spans may wait before a batch is sent, and the most held in memory (extra ones are dropped:
    # a slow collector must never slow or grow the service).
    otlp_export_delay_ms: int = 1000
    otlp_max_queue_size: int = 4096


class _State:
    tracer: Any = None
    provider: Any = None
    ids: Any = None


_state = _State()


def enabled() -> bool:
    return _state.tracer is not None


def configure(service: str, settings: TracingSettings) -> None:
    """Set up the SDK and the OTLP exporter; does nothing (and imports nothing) without an endpoint."""
    if not settings.otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class PinnedIds(RandomIdGenerator):
        """Hands out the ids the runtime chose for the span being recorded (set just before, on one thread)."""

        trace_id: int | None = None
        span_id: int | None = None

        def generate_trace_id(self) -> int:
            return self.trace_id if self.trace_id is not None else super().generate_trace_id()

        def generate_span_id(self) -> int:
            return self.span_id if self.span_id is not None else super().generate_span_id()

    endpoint = settings.otlp_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    ids = PinnedIds()
    provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=ids)
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, timeout=settings.otlp_timeout_seconds),
        schedule_delay_millis=settings.otlp_export_delay_ms, max_queue_size=settings.otlp_max_queue_size))
    _state.provider, _state.ids = provider, ids
    _state.tracer = provider.get_tracer("psgateway")
    log.info("tracing to %s", endpoint)


def shutdown() -> None:
    """Send what is queued and stop the exporter (at process exit)."""
    if _state.provider is not None:
        try:
            _state.provider.shutdown()
        except Exception:
            log.warning("flushing spans at shutdown failed", exc_info=True)
    _state.tracer = _state.provider = _state.ids = None


def parent_span_id(traceparent: str | None, trace_id: str) -> str | None:
    """The caller's span id from its ``traceparent``, when well formed and of this trace."""
    if not traceparent:
        return None
    match = _TRACEPARENT_RE.match(traceparent.strip().lower())
    if match is None or match.group(1) != trace_id or match.group(2) == "0" * 16:
        return None
    return match.group(2)


def record_span(name: str, *, kind: str, trace: TraceContext, span_id: str, parent_id: str | None,
                started: float, status: int, attributes: Mapping[str, str | int]) -> None:
    """Record one finished span. ``started`` is a ``time.perf_counter()`` reading; ``kind`` is server or client."""
    tracer = _state.tracer
    if tracer is None:
        return
    from opentelemetry import trace as trace_api
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

    end_ns = time.time_ns()
    start_ns = end_ns - int((time.perf_counter() - started) * 1e9)
    flags = TraceFlags(int(trace.flags, 16))
    context = None
    if parent_id is not None:
        parent = SpanContext(int(trace.trace_id, 16), int(parent_id, 16), is_remote=True, trace_flags=flags)
        context = trace_api.set_span_in_context(NonRecordingSpan(parent))
    ids = _state.ids
    ids.trace_id, ids.span_id = int(trace.trace_id, 16), int(span_id, 16)
    try:
        span = tracer.start_span(name, context=context, kind=SpanKind.SERVER if kind == "server" else SpanKind.CLIENT,
                                 attributes=dict(attributes), start_time=start_ns)
    finally:
        ids.trace_id = ids.span_id = None
    if status >= 500 or status == 0:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
    span.end(end_time=end_ns)


def record_server_span(service: str, method: str, route: str | None, trace: TraceContext, traceparent: str | None,
                       started: float, status: int, **attributes: str | int) -> None:
    """The span of one call this process answered (its id is the hop's ``trace.span_id``)."""
    record_span(f"{method} {route or '-'}", kind="server", trace=trace, span_id=trace.span_id,
                parent_id=parent_span_id(traceparent, trace.trace_id), started=started, status=status,
                attributes={"service.name": service, "http.request.method": method, "http.route": route or "-",
                            "http.response.status_code": status, **attributes})


def record_client_span(downstream: str, method: str, path: str, trace: TraceContext, sent_traceparent: str,
                       started: float, status: int) -> None:
    """The span of one outbound call (its id is the one sent in the call's ``traceparent``)."""
    match = _TRACEPARENT_RE.match(sent_traceparent)
    if match is None:
        return
    record_span(f"{method} {downstream}", kind="client", trace=trace, span_id=match.group(2),
                parent_id=trace.span_id, started=started, status=status,
                attributes={"peer.service": downstream, "http.request.method": method, "url.path": path,
                            "http.response.status_code": status})


def record_gateway_call(scope: Mapping[str, Any], trace: TraceContext, started: float, status: int,
                        api: str | None, version: int | None, route: str | None, client_id: str | None) -> None:
    """The gateway's span for one proxied call (the one hook ``gateway.proxy`` calls, only when enabled)."""
    traceparent = None
    for key, value in scope.get("headers", ()):
        if key == b"traceparent":
            traceparent = value.decode("latin-1")
            break
    method = str(scope.get("method", "-"))
    label = f"/{api}/v{version}{route if route != '/' else ''}" if api and route else (
        f"/{api}/v{version}" if api else None)
    record_server_span("gateway", method, label, trace, traceparent, started, status,
                       **{"psgw.api": api or "-", "psgw.client_id": client_id or "-"})
