"""A policy written outside policies/ joins a real gateway's chain through gateway.yaml alone (``policy_modules``
and ``bindings``, no edit in gateway/), in all three phases and at each binding level; a gateway.yaml naming an
unknown policy is refused at start-up with a message naming it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.launcher import REPO_ROOT
from tests.support.gateway import GatewayProcess, base_config, free_port
from tests.support.stack import RunningStack

V2 = "/experience/mobile-time/v2"
WORKER = "w_consultant"


@pytest.fixture(scope="module")
def stamped(module_gateways: Callable[..., GatewayProcess]) -> GatewayProcess:
    config = base_config()
    config["policy_modules"] = ["tests.gateway.sample_policy"]
    config["bindings"] = [
        {"policy": "stamp", "layer": "experience", "config": {"value": "layer", "refuse_header": "x-refuse-me"}},
        {
            "policy": "stamp",
            "api": "experience/mobile-time",
            "version": 2,
            "route": "GET /me/assignments",
            "config": {"value": "route"},
        },
        {"policy": "stamp", "api": "experience/mobile-time", "client": "dashboard-web", "config": {"value": "client"}},
    ]
    return module_gateways(config)


def test_the_policy_stamps_every_answer_of_its_scope_with_the_most_specific_binding(stamped: GatewayProcess) -> None:
    with stamped.client("mobile-app", subject=WORKER) as mobile:
        assert mobile.get(f"{V2}/me/weeks/2026-11-30").headers["x-stamp"] == "layer"
        assert mobile.get(f"{V2}/me/assignments").headers["x-stamp"] == "route"
    with stamped.client("dashboard-web", subject=WORKER) as dashboards:
        assert dashboards.get(f"{V2}/me/assignments").headers["x-stamp"] == "client"
    with stamped.client("experience-tier") as tier:
        assert "x-stamp" not in tier.get("/process/staffing/v1/projects").headers


def test_its_access_phase_refuses_and_its_response_phase_still_stamps_refusals(stamped: GatewayProcess) -> None:
    with stamped.client("mobile-app", subject=WORKER) as mobile:
        refused = mobile.get(f"{V2}/me/weeks/2026-11-30", headers={"X-Refuse-Me": "1"})
        # The route binding (no refuse_header) is the one for /me/assignments: the same header passes there.
        passed = mobile.get(f"{V2}/me/assignments", headers={"X-Refuse-Me": "1"})
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["reason"] == "stamp_refused" and refused.headers["x-stamp"] == "layer"
    assert passed.json().get("reason") != "stamp_refused" and passed.headers["x-stamp"] == "route"
    anonymous = stamped.client().get(f"{V2}/me/weeks/2026-11-30")
    assert anonymous.status_code == 401 and anonymous.headers["x-stamp"] == "layer"


def test_its_log_phase_counts_in_its_own_metric(stamped: GatewayProcess) -> None:
    with stamped.client("mobile-app", subject=WORKER) as mobile:
        mobile.get(f"{V2}/me/weeks/2026-11-30")
    metrics = stamped.client().get("/metrics").text
    line = next(
        line for line in metrics.splitlines() if line.startswith('psgw_sample_stamp_calls_total{value="layer"}')
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1


def test_a_gateway_yaml_naming_an_unknown_policy_is_refused_at_start_up(stack: RunningStack, tmp_path: Path) -> None:
    config = base_config()
    config["bindings"] = [{"policy": "no_such_policy", "layer": "experience"}]
    gateway = GatewayProcess(stack, tmp_path, config)
    env = {**gateway.env, "PSGW_GATEWAY_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-m", "gateway"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "bindings[0]: no policy is named 'no_such_policy'" in result.stdout + result.stderr
