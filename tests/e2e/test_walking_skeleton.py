"""The walking skeleton: one authenticated call crosses every layer, and failures along the way are clear; walked
on the default sandbox PSA and again with the PSA on Certinia (``PSGW_PSA_BACKEND=certinia``), whose record ids are
Salesforce's."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.launcher import REPO_ROOT, Ports, Stack
from sandbox import firm
from tests.certinia.org import certinia_session
from tests.support.contract_checks import assert_matches_contract
from tests.support.stack import DEMO_CONSULTANT, RunningStack, started
from tests.system.vendor_access import vendor_client

MY_ASSIGNMENTS = "/experience/mobile-time/v1/me/assignments"


@pytest.fixture(scope="module", params=["sandbox", "certinia"])
def stack(request: pytest.FixtureRequest, stack: RunningStack,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The session's stack (default backends), then a whole stack with the PSA on Certinia."""
    if request.param == "sandbox":
        yield stack
        return
    on_certinia = Stack(data_dir=tmp_path_factory.mktemp("psgw-walk-certinia"), ports=Ports.free(),
                        config_file=REPO_ROOT / "gateway.yaml", extra_env={"PSGW_PSA_BACKEND": "certinia"})
    with started(on_certinia, timeout=180) as running:
        yield running


def psa_project_code(stack: RunningStack, record_id: str) -> str:
    """The project code the PSA vendor itself holds under ``record_id`` (its own id for the project)."""
    if stack.stack.extra_env.get("PSGW_PSA_BACKEND") == "certinia":
        with certinia_session(stack) as org:
            answer = org.get(f"/sobjects/pse__Proj__c/{record_id}")
            assert answer.status_code == 200, answer.text
            return str(answer.json()["pse__Project_ID__c"])
    with vendor_client(stack, "psa") as psa:
        answer = psa.get(f"/api/v3/projects/{record_id}")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["projectCode"])


def demo_assignments_of(employee_number: str) -> set[str]:
    story = firm.build(dt.datetime.now(dt.UTC).date())
    return {"asg_" + a.number.removeprefix("ASG-") for a in story.assignments if a.worker == employee_number}


def test_consultant_sees_own_assignments_across_every_layer(stack: RunningStack, consultant: httpx.Client) -> None:
    response = consultant.get(MY_ASSIGNMENTS)

    assert response.status_code == 200, response.text
    assert_matches_contract("experience/mobile-time", "GET", "/me/assignments", response)
    items = response.json()["items"]
    assert {item["assignment_id"] for item in items} == demo_assignments_of("E1001")
    contoso = next(item for item in items if item["project_id"] == "prj_4001")
    assert contoso["project_name"] == "Contoso Retail: Pricing"
    assert contoso["can_log_time"] is True
    # The proposed assignment is shown but not open for time entry.
    assert [i["can_log_time"] for i in items].count(False) == 1
    assert response.headers["x-correlation-id"]


def test_etag_lets_a_phone_revalidate(consultant: httpx.Client) -> None:
    first = consultant.get(MY_ASSIGNMENTS)
    etag = first.headers["etag"]

    second = consultant.get(MY_ASSIGNMENTS, headers={"If-None-Match": etag})

    assert second.status_code == 304
    assert second.content == b""


def test_each_hop_speaks_its_contract(stack: RunningStack) -> None:
    with stack.client("experience-tier") as experience:
        staffing = experience.get(f"/process/staffing/v1/workers/{DEMO_CONSULTANT}/assignments")
        assert staffing.status_code == 200, staffing.text
        assert_matches_contract("process/staffing", "GET", "/workers/{worker_id}/assignments", staffing)
    with stack.client("process-tier") as process:
        assignments = process.get("/system/psa/v1/assignments", params={"worker_id": DEMO_CONSULTANT, "limit": 2})
        assert assignments.status_code == 200, assignments.text
        assert_matches_contract("system/psa", "GET", "/assignments", assignments)
        page = assignments.json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = process.get("/system/psa/v1/assignments",
                           params={"worker_id": DEMO_CONSULTANT, "limit": 2, "cursor": page["next_cursor"]})
        seen = {a["id"] for a in page["items"]} | {a["id"] for a in rest.json()["items"]}
        assert len(seen) == 4

        project = process.get("/system/psa/v1/projects/prj_4001")
        assert_matches_contract("system/psa", "GET", "/projects/{project_id}", project)
        # The external id is the PSA vendor's own id for the record, whichever vendor that is.
        assert list(project.json()["external_ids"]) == ["psa"]
        assert psa_project_code(stack, project.json()["external_ids"]["psa"]) == "PRJ-4001"

        missing = process.get("/system/psa/v1/projects/prj_9999")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert_matches_contract("system/psa", "GET", "/projects/{project_id}", missing)


def test_tier_to_tier_calls_go_through_the_gateway_with_their_own_identity(stack: RunningStack,
                                                                           consultant: httpx.Client) -> None:
    consultant.get(MY_ASSIGNMENTS, headers={"X-Correlation-ID": "skeleton-trace-1"})

    def clients_logged() -> set[str]:
        gateway_log = (stack.stack.data_dir / "logs" / "gateway.log").read_text()
        hops = [line for line in gateway_log.splitlines() if "skeleton-trace-1" in line and '"msg":"call"' in line]
        return {client for line in hops for client in ("mobile-app", "experience-tier", "process-tier")
                if f'"client_id":"{client}"' in line}

    # The outer hop's line is written as its call ends, just after the answer went out: wait for it.
    deadline = time.monotonic() + 10
    while clients_logged() != {"mobile-app", "experience-tier", "process-tier"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert clients_logged() == {"mobile-app", "experience-tier", "process-tier"}


def test_call_without_token_is_refused_with_problem_json(stack: RunningStack) -> None:
    with stack.client() as anonymous:
        response = anonymous.get(MY_ASSIGNMENTS)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401 and body["reason"] == "missing"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_route_is_a_problem_not_a_page(stack: RunningStack, consultant: httpx.Client) -> None:
    for path in ("/experience/nothing-here/v1/x", "/definitely/not/here", MY_ASSIGNMENTS + "/extra"):
        response = consultant.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json", path
        assert response.json()["status"] == 404


def test_client_token_cannot_pose_as_a_consultant(stack: RunningStack) -> None:
    with stack.client("mobile-app") as app_only:
        response = app_only.get(MY_ASSIGNMENTS)

    assert response.status_code == 403
    assert response.json()["type"].endswith("/user-token-required")


def test_token_endpoint_issues_tokens_the_gateway_accepts(stack: RunningStack) -> None:
    token = httpx.post(f"{stack.url}/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=("experience-tier", "demo-secret-experience-tier"))
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0

    response = httpx.get(f"{stack.url}/process/staffing/v1/workers/{DEMO_CONSULTANT}/assignments",
                         headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 200

    wrong = httpx.post(f"{stack.url}/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=("experience-tier", "not-the-secret"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


def test_jwks_and_discovery_are_published(stack: RunningStack) -> None:
    discovery = httpx.get(f"{stack.url}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == stack.url
    jwks = httpx.get(discovery["jwks_uri"]).json()
    assert jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0]
