"""A policy from outside policies/ (the test of "adding a policy needs no edit in gateway/"): gateway.yaml loads it
with ``policy_modules: [tests.gateway.sample_policy]`` and binds it with ``bindings``.

``stamp`` uses all three phases: access refuses a call carrying ``refuse_header``, response writes ``header: value``
on every answer, log counts calls in its own metric.
"""

from __future__ import annotations

import msgspec
from prometheus_client import Counter

from policies.audit import CallEntry
from policies.exchange import Answer, Exchange
from policies.registry import BuildContext, PolicySpec
from runtime.problems import ProblemError

STAMPED = Counter("psgw_sample_stamp_calls_total", "Calls the sample stamp policy saw, by value", ["value"])


class StampConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    value: str
    header: str = "x-stamp"
    refuse_header: str | None = None


class Stamp:
    name = "stamp"

    def __init__(self, config: StampConfig) -> None:
        self.value = config.value
        self.header = (config.header.lower().encode(), config.value.encode())
        self.refuse = config.refuse_header.lower().encode() if config.refuse_header else None

    async def access(self, exchange: Exchange) -> None:
        if self.refuse is not None and exchange.header(self.refuse) is not None:
            exchange.decisions[self.name] = "refused"
            raise ProblemError(
                "the stamp policy refuses this call", status=403, slug="stamp-refused", reason="stamp_refused"
            )
        exchange.decisions[self.name] = "ok"

    def response(self, exchange: Exchange, answer: Answer) -> None:
        answer.headers.append(self.header)

    def log(self, exchange: Exchange | None, entry: CallEntry) -> None:
        STAMPED.labels(self.value).inc()


def _build(config: StampConfig, ctx: BuildContext) -> Stamp:
    return Stamp(config)


# Between authorize (1400) and rate_limit (1300): it sees the client, and a refusal costs no rate budget.
POLICY = PolicySpec(
    name="stamp",
    config=StampConfig,
    priority=1350,
    build=_build,
    summary="a sample policy: stamps a header, refuses on a header, counts calls",
)
