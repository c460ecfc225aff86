"""The chain as gateway.yaml builds it: policies found by name (built-in or from ``policy_modules``), ordered by
priority, bound globally, per layer, per API version, per route and per client, the most specific binding winning;
and every mistake in that wiring refused with a message that names it, before anything serves."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway import config as gateway_config
from gateway.config import ConfigError, GatewayConfig
from gateway.launcher import REPO_ROOT
from gateway.state import CompiledState, ContractCache, compile_state
from policies.rate_limit import MemoryStore
from runtime.tokens import TokenVerifier

SAMPLE = "tests.gateway.sample_policy"
V2 = "/experience/mobile-time/v2"


CONTRACTS = ContractCache()  # compiled once for the module


def base_config() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "gateway.yaml").read_text())  # type: ignore[no-any-return]


class _Tokens:
    def authorization_for(self, principal: Any) -> bytes:
        return b"Bearer internal"


def parse(raw: dict[str, Any]) -> GatewayConfig:
    return gateway_config.parse(yaml.safe_dump(raw), env={})


def compile_raw(raw: dict[str, Any]) -> CompiledState:
    config = parse(raw)
    return compile_state(
        config,
        verifier=TokenVerifier([], audience="psgateway"),
        upstreams={name: object() for name in config.upstreams},  # type: ignore[misc]
        contracts=CONTRACTS,
        open_store=lambda spec, cfg: MemoryStore(),
        services={"internal_tokens": _Tokens(), "audit": None},
    )


def with_stamp(*bindings: dict[str, Any]) -> dict[str, Any]:
    raw = base_config()
    raw["policy_modules"] = [SAMPLE]
    raw["bindings"] = list(bindings)
    return raw


def stamp_of(chain: Any) -> str | None:
    handler = chain.handler("stamp")
    return None if handler is None else handler.value


def test_the_default_chain_runs_the_built_ins_in_priority_order() -> None:
    state = compile_raw(base_config())
    assert state.routes["/system/psa/v1"].chain.names[:6] == (
        "ip_allow",
        "authenticate",
        "authorize",
        "rate_limit",
        "limits",
        "validate",
    )
    v3 = "/experience/mobile-time/v3"
    assert state.routes[v3].chain.names[0] == "cors"
    assert state.routes[v3].chain.names[-2:] == ("token_exchange", "audit")
    # Only the deprecated versions (v1, v2) carry the lifecycle policy; the audit sink also logs calls no API matched.
    assert "lifecycle" in state.routes["/experience/mobile-time/v1"].chain.names
    assert "lifecycle" in state.routes[V2].chain.names
    assert "lifecycle" not in state.routes[v3].chain.names
    assert state.unrouted.names == ("audit",)


def test_a_policy_from_a_module_is_bound_by_gateway_yaml_alone_at_each_level() -> None:
    state = compile_raw(
        with_stamp(
            {"policy": "stamp", "layer": "experience", "config": {"value": "layer"}},
            {
                "policy": "stamp",
                "api": "experience/mobile-time",
                "version": 2,
                "route": "GET /me/assignments",
                "config": {"value": "route"},
            },
            {
                "policy": "stamp",
                "api": "experience/mobile-time",
                "version": 2,
                "client": "dashboard-web",
                "config": {"value": "client"},
            },
        )
    )
    v2 = state.routes[V2]
    assert stamp_of(v2.chain) == "layer"
    names = v2.chain.names
    assert names.index("authorize") < names.index("stamp") < names.index("rate_limit")  # by priority
    assignments = next(chain for op, chain in v2.chains.items() if op.path == "/me/assignments")  # type: ignore[attr-defined]
    assert stamp_of(assignments) == "route"
    # A client binding beats a route binding (as Kong ranks consumer above route), on every operation.
    assert stamp_of(v2.chain.by_client["dashboard-web"]) == "client"
    assert stamp_of(assignments.by_client["dashboard-web"]) == "client"
    assert "mobile-app" not in v2.chain.by_client
    assert stamp_of(state.routes["/experience/approvals/v1"].chain) == "layer"
    assert stamp_of(state.routes["/process/staffing/v1"].chain) is None


def test_a_binding_can_turn_a_policy_off_in_its_scope_and_override_fields() -> None:
    raw = base_config()
    raw["bindings"] = [
        {"policy": "rate_limit", "api": "experience/dashboards", "enabled": False},
        {"policy": "limits", "api": "experience/mobile-time", "version": 2, "config": {"max_json_depth": 8}},
    ]
    state = compile_raw(raw)
    assert "rate_limit" not in state.routes["/experience/dashboards/v1"].chain.names
    assert state.routes[V2].chain.handler("limits").max_json_depth == 8
    assert state.routes["/experience/mobile-time/v1"].chain.handler("limits").max_json_depth == 64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["policies"].update(nope={}), "no policy is named 'nope'"),
        (lambda raw: raw["policies"]["rate_limit"].update(failure_mode="sometimes"), "policies.rate_limit"),
        (lambda raw: raw.update(policy_modules=["tests.gateway.no_such_module"]), "cannot import"),
        (lambda raw: raw.update(policy_modules=["tests.unit.policies.harness"]), "defines no POLICY"),
        (
            lambda raw: raw.update(bindings=[{"policy": "stamp", "config": {"value": "x"}}]),
            "no policy is named 'stamp'",
        ),
        (
            lambda raw: raw.update(
                policy_modules=[SAMPLE], bindings=[{"policy": "stamp", "config": {"colour": "red"}}]
            ),
            "bindings[0] (stamp)",
        ),
        (
            lambda raw: raw.update(bindings=[{"policy": "limits", "client": "nobody"}]),
            "client 'nobody' is not registered",
        ),
        (
            lambda raw: raw.update(bindings=[{"policy": "cors", "client": "mobile-app"}]),
            "cors runs before authenticate",
        ),
        (
            lambda raw: raw.update(bindings=[{"policy": "authenticate", "layer": "system", "enabled": False}]),
            "authenticate cannot be turned off",
        ),
        (
            lambda raw: raw.update(bindings=[{"policy": "limits", "api": "experience/nowhere"}]),
            "api 'experience/nowhere' is not published",
        ),
        (lambda raw: raw.update(bindings=[{"policy": "limits", "route": "GET /x"}]), "version and route need an api"),
    ],
)
def test_a_bad_binding_or_policy_config_is_refused_when_the_file_is_read(change: Any, message: str) -> None:
    raw = base_config()
    change(raw)
    with pytest.raises(ConfigError) as refused:
        parse(raw)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("bindings", "message"),
    [
        (
            [{"policy": "limits", "api": "experience/mobile-time", "version": 2, "route": "GET /nowhere"}],
            "'GET /nowhere' is not an operation of the experience/mobile-time v2 contract",
        ),
        (
            [{"policy": "limits", "layer": "experience"}, {"policy": "limits", "layer": "experience"}],
            "equally specific",
        ),
        (
            [
                {
                    "policy": "lifecycle",
                    "api": "experience/mobile-time",
                    "version": 3,  # active: its contract names no deprecation date
                    "config": {"sunset": "2030-01-01"},
                }
            ],
            "names no x-deprecated-at",
        ),
    ],
)
def test_a_binding_that_does_not_compile_is_refused_before_it_serves(
    bindings: list[dict[str, Any]], message: str
) -> None:
    raw = base_config()
    raw["bindings"] = bindings
    with pytest.raises(ConfigError) as refused:
        compile_raw(raw)
    assert message in str(refused.value)


def _yaml_after(document: str, heading: str) -> dict[str, Any]:
    text = document[document.index(heading) :]
    text = text[text.index("```yaml") + len("```yaml") :]
    return yaml.safe_load(text[: text.index("```")])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("readme", "heading"), [("README.md", "### The policy chain"), ("policies/README.md", "## Bindings")]
)
def test_the_documented_binding_examples_compile(readme: str, heading: str) -> None:
    example = _yaml_after((REPO_ROOT / readme).read_text(), heading)
    raw = base_config()
    raw["policies"]["rate_limit"].update(example["policies"]["rate_limit"])
    raw["bindings"] = example["bindings"]
    raw["policy_modules"] = example.get("policy_modules", [])
    state = compile_raw(raw)
    assert state.routes[V2].chain.by_client  # the per-client binding of both examples
