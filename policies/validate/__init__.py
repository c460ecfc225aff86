"""Contract validation: the request is checked against the API version's contract before the upstream sees it,
and the response after, when configured.

The contract is compiled once per contract file (``contracts.toolchain.validation.CompiledContract``: a router
plus precompiled per-operation validators); a call costs a route lookup and one schema check per request part
that carries something. Errors come back as 400 problem+json with one ``{pointer, detail, location}`` per bad
field (415 for a media type the operation does not accept, 404/405 for what the contract does not publish).
Responses: ``off``, ``sampled`` (a fraction is checked; violations are logged and counted, the response
passes) or ``strict`` (every response is checked; a violation becomes 502).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping
from typing import Literal

import msgspec
from prometheus_client import Counter

from contracts.toolchain.validation import CompiledContract, ValidationIssue
from policies.exchange import Answer, Exchange
from policies.registry import BuildContext, PolicySpec
from runtime.problems import FieldError, ProblemError

log = logging.getLogger("policies.validate")

RESPONSE_VIOLATIONS = Counter(
    "psgw_response_contract_violations_total",
    "Upstream responses that broke their contract, by API, version and mode",
    ["api", "version", "mode"],
)
VALIDATION_FAILURES = Counter("psgw_validation_failures_total", "Requests refused by contract validation",
                              ["api", "version", "reason"])

ResponseMode = Literal["off", "sampled", "strict"]


class ValidateConfig(msgspec.Struct, kw_only=True, frozen=True):
    requests: bool = True
    responses: ResponseMode = "off"
    response_sample_rate: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.response_sample_rate <= 1.0:
            raise ValueError("validate.response_sample_rate must be between 0 and 1")


class RequestInvalid(ProblemError):
    status = 400
    slug = "validation-error"
    title = "Invalid request"


class UnsupportedMediaType(ProblemError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ResponseInvalid(ProblemError):
    status = 502
    slug = "response-contract-violation"
    title = "Bad gateway"


def field_errors(issues: list[ValidationIssue]) -> list[FieldError]:
    return [FieldError(pointer=i.pointer, detail=i.detail, location=i.location) for i in issues]


class Validate:
    """Request validation for one API version (route matching happened in the proxy, from the same contract)."""

    name = "validate"

    def __init__(self, config: ValidateConfig, contract: CompiledContract) -> None:
        self.config = config
        self.contract = contract

    def _refused(self, exchange: Exchange, reason: str) -> None:
        exchange.decisions[self.name] = reason
        api = exchange.api
        VALIDATION_FAILURES.labels(api.api_id, str(api.version), reason).inc()

    async def access(self, exchange: Exchange) -> None:
        operation = exchange.operation
        if operation is None:
            allowed = self.contract.allowed_methods(exchange.path)
            if allowed:
                self._refused(exchange, "method_not_allowed")
                raise ProblemError(f"{exchange.method} is not an operation of {exchange.path}", status=405,
                                   reason="method_not_allowed", headers={"Allow": ", ".join(sorted(allowed))})
            self._refused(exchange, "no_operation")
            raise ProblemError(f"the {exchange.api.api_id} v{exchange.api.version} contract publishes no "
                               f"{exchange.path}", status=404, slug="no-such-operation", reason="no_operation")
        if not self.config.requests:
            exchange.decisions[self.name] = "skipped"
            return
        issues = operation.validate_request(
            exchange.path_params,
            exchange.raw_query.decode("latin-1"),
            _HeaderView(exchange.headers),
            exchange.body,
            exchange.header(b"content-type"),
        )
        if not issues:
            exchange.decisions[self.name] = "ok"
            return
        if any(issue.code == "unsupported_media_type" for issue in issues):
            self._refused(exchange, "unsupported_media_type")
            raise UnsupportedMediaType(issues[0].detail, reason="unsupported_media_type",
                                       errors=field_errors(issues))
        self._refused(exchange, "invalid_request")
        raise RequestInvalid(f"the request does not match the {exchange.api.api_id} v{exchange.api.version} "
                             "contract", reason="invalid_request", errors=field_errors(issues))

    def check_response(self, exchange: Exchange, status: int, content_type: str | None, body: bytes) -> None:
        """Validate an upstream response per the configured mode; raises ResponseInvalid when strict."""
        mode = self.config.responses
        operation = exchange.operation
        if mode == "off" or operation is None:
            return
        if mode == "sampled" and random.random() >= self.config.response_sample_rate:  # noqa: S311 - sampling
            return
        issues = operation.validate_response(status, content_type, body)
        if not issues:
            exchange.decisions["validate_response"] = "ok"
            return
        api = exchange.api
        RESPONSE_VIOLATIONS.labels(api.api_id, str(api.version), mode).inc()
        exchange.decisions["validate_response"] = "invalid_response"
        log.warning("upstream response breaks its contract", extra={
            "api": api.api_id, "version": api.version, "route": exchange.route, "status": status,
            "issues": [msgspec.to_builtins(i) for i in issues[:10]],
        })
        if mode == "strict":
            raise ResponseInvalid(f"the {api.upstream} tier answered {exchange.method} {exchange.route} with a "
                                  "response that breaks the contract", reason="invalid_response",
                                  upstream=api.upstream, errors=field_errors(issues))


class ValidateResponses(Validate):
    """Request validation plus the response phase: upstream answers checked as ``responses`` says."""

    def response(self, exchange: Exchange, answer: Answer) -> None:
        if answer.from_upstream:
            content_type = next((v.decode("latin-1") for k, v in answer.headers if k == b"content-type"), None)
            self.check_response(exchange, answer.status, content_type, answer.body)


def _build(config: ValidateConfig, ctx: BuildContext) -> Validate | None:
    if ctx.contract is None:
        return None
    return (ValidateResponses if config.responses != "off" else Validate)(config, ctx.contract)


class _HeaderView(Mapping[str, str]):
    """The ASGI header pairs as a read-only mapping, decoded only when the operation declares header parameters
    (the validator then reads every pair once: a dict built on first use, not a scan of the list per name)."""

    __slots__ = ("_decoded", "_headers")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._headers = headers
        self._decoded: dict[str, str] | None = None

    def _dict(self) -> dict[str, str]:
        if self._decoded is None:
            # ASGI header names are lower-case already; the first of repeated names wins, as ``header()`` reads.
            decoded: dict[str, str] = {}
            for key, value in self._headers:
                decoded.setdefault(key.decode("latin-1"), value.decode("latin-1"))
            self._decoded = decoded
        return self._decoded

    def __getitem__(self, name: str) -> str:
        return self._dict()[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._headers)


# An API version's own ``validate`` in gateway.yaml's apis is a binding of this policy to that version.
POLICY = PolicySpec(name="validate", config=ValidateConfig, priority=1100, build=_build, enabled_by_default=True,
                    summary="requests (and, when asked, responses) against the API version's contract")
