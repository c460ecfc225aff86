"""Bad input against the real running tiers behind the gateway: never a 5xx, never an answer outside the contract.

- schemathesis over every published contract: reads with valid generated input, writes with invalid input only
  (the session stack is shared: valid writes with generated ids would change other tests' demo data), each
  response checked like ``--checks all`` (status code, content type, headers and body against the contract,
  invalid input rejected, no server error) except ``positive_data_acceptance`` (a valid but unknown id is a
  correct, documented 404);
- hypothesis over the gateway's own parsing: headers, bearer tokens, JSON bodies and query strings.
"""

from __future__ import annotations

import json
import string
import time
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.launcher import REPO_ROOT
from runtime.downstream import segment
from tests.support.stack import DEMO_CONSULTANT, RunningStack

READS = frozenset({"GET", "HEAD"})
# Every check of ``--checks all``: each answer's status, media type, headers and body must be in the contract.
CHECKS = [not_a_server_error, content_type_conformance, response_headers_conformance, response_schema_conformance,
          status_code_conformance]
FUZZ = settings(max_examples=12, deadline=None, database=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck), derandomize=True)

# Who calls each layer in production (the layer rule): apps call experience APIs, the experience tier calls
# process APIs, the process tier calls system APIs.
CALLERS: dict[str, tuple[str, str | None]] = {
    "experience/mobile-time": ("mobile-app", DEMO_CONSULTANT),
    "experience/approvals": ("dashboard-web", "wrk_e1002"),
    "experience/dashboards": ("dashboard-web", "wrk_e1002"),
    "experience/finance-ops": ("finance-web", "wrk_e1003"),
    "process": ("experience-tier", None),
    "system": ("process-tier", None),
}


def published_apis() -> list[tuple[str, int, str]]:
    config = yaml.safe_load((REPO_ROOT / "gateway.yaml").read_text())
    return [(api["id"], api["version"], api["contract"]) for api in config["apis"]
            if api.get("lifecycle") != "retired"]


def caller_of(api_id: str) -> tuple[str, str | None]:
    return CALLERS.get(api_id) or CALLERS[api_id.split("/")[0]]


@pytest.mark.parametrize(("api_id", "version", "contract"), published_apis(),
                         ids=[f"{a}-v{v}" for a, v, _ in published_apis()])
def test_every_contract_holds_under_generated_input(stack: RunningStack, api_id: str, version: int,
                                                     contract: str) -> None:
    schema = schemathesis.openapi.from_path(REPO_ROOT / "contracts" / contract)
    client_id, subject = caller_of(api_id)
    headers = {"Authorization": "Bearer " + stack.token(client_id, subject=subject)}
    # The contract's server is a path (/system/psa/v1): a base URL given here replaces it, so it carries it.
    base_url = stack.url + f"/{api_id}/v{version}"
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid contract raises here, failing the test
        write = operation.method.upper() not in READS
        modes = [GenerationMode.NEGATIVE] if write else [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        for mode in modes:
            checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case: Any, checks: list[Any], label: str) -> None:
                nonlocal calls
                calls += 1
                try:
                    response = case.call(base_url=base_url, headers=headers, timeout=30)
                    # The gateway's per-person limit may throttle this burst: wait as it says, as a client must.
                    for _ in range(5):
                        if response.status_code != 429:
                            break
                        time.sleep(min(float(response.headers.get("retry-after", ["1"])[0]), 5.0))
                        response = case.call(base_url=base_url, headers=headers, timeout=30)
                    case.validate_response(response, checks=checks)
                except (AssertionError, FailureGroup) as exc:  # the whole story: the check, the request, curl
                    failures.append(f"{case.method} {case.formatted_path} ({label}): {_story(exc)}")

            try:
                exercise(checks=checks, label=mode.value)
            except Unsatisfiable:
                # No invalid input exists for this operation (e.g. no parameters and no body): nothing to send.
                assert mode is GenerationMode.NEGATIVE, f"{operation.method} {operation.path}: no valid input"
    assert calls > 0
    assert not failures, "\n\n".join(failures[:10])


def _story(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_story(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {str(exc)[:1200]}"


# --- the gateway's own parsing ---------------------------------------------------------------------------

# Printable ASCII without edge whitespace: what HTTP lets a client send in a header value at all.
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300).map(str.strip)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=20)
PATHS = ["/experience/mobile-time/v1/me/assignments", "/experience/mobile-time/v1/time-entries",
         "/process/timesheets/v1/approvals", "/system/psa/v1/projects", "/system/psa/v1/projects/prj_4001",
         "/process/events/v1/events"]


def answered_cleanly(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text[:300]
        body = response.json()
        assert body["status"] == response.status_code and body["type"] and body["title"]


@FUZZ
@given(authorization=st.one_of(
           HEADER_TEXT, HEADER_TEXT.map(lambda t: ("Bearer " + t).strip()),
           st.lists(st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=60), min_size=3,
                    max_size=3).map(lambda parts: "Bearer " + ".".join(parts))),
       correlation=HEADER_TEXT, traceparent=HEADER_TEXT, path=st.sampled_from(PATHS))
def test_the_gateway_answers_any_credentials_and_ids_with_a_problem_not_a_crash(
        stack: RunningStack, authorization: str, correlation: str, traceparent: str, path: str) -> None:
    response = httpx.get(stack.url + path, timeout=30, headers={
        "Authorization": authorization, "X-Correlation-ID": correlation, "traceparent": traceparent})
    answered_cleanly(response)
    assert response.status_code == 401
    assert response.headers["x-correlation-id"]


@FUZZ
@given(body=st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=300)),
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                     "application/merge-patch+json", "", "application/x-www-form-urlencoded"]),
       query=st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=4),
       path=st.sampled_from(PATHS))
def test_the_gateway_answers_any_body_and_query_with_a_problem_not_a_crash(
        stack: RunningStack, body: bytes, content_type: str, query: dict[str, str], path: str) -> None:
    client_id, subject = caller_of("/".join(path.split("/")[1:3]))
    headers = {"Authorization": "Bearer " + stack.token(client_id, subject=subject)}
    if content_type:
        headers["Content-Type"] = content_type
    # Every body is refused before it changes anything: the bodies are invalid for these operations' contracts.
    response = httpx.request("POST" if path.endswith(("time-entries", "approvals")) else "GET",
                             stack.url + path, params=query, content=body if path.endswith(
                                 ("time-entries", "approvals")) else None, headers=headers, timeout=30)
    answered_cleanly(response)


# --- ids and periods that cannot exist: each is simply not found, at every tier, never a 5xx --------------

# After an id's prefix: control characters, Latin-1 and astral text, the URL's own delimiters and a climb to
# another resource; and whole ids that are dot segments. Each must stay one id on every hop (gateway -> tier,
# tier -> gateway -> tier) and name nothing.
_TAILS = ["\x1c", "\n4001", "\u00d0", "\U000b8df8", "4001/tasks", "4001?limit=1", "4001#x", "%41",
          "/../../../erp/v1/customers/cus_1001"]
IMPOSSIBLE_IDS = [("prj_" + tail, "te_" + tail) for tail in _TAILS] + [("..", ".."), (".", ".")]


@pytest.mark.parametrize(("project_id", "time_entry_id"), IMPOSSIBLE_IDS)
def test_an_id_that_cannot_exist_is_not_found_through_the_gateway_and_the_tiers(
        stack: RunningStack, project_id: str, time_entry_id: str) -> None:
    with stack.client("process-tier") as system_caller:
        response = system_caller.get("/system/psa/v1/projects/" + segment(project_id))
        answered_cleanly(response)
        assert response.status_code == 404, response.text
    with stack.client("experience-tier") as process_caller:
        # The process tier puts each id into the path of its own call to the system tier.
        response = process_caller.get("/process/insights/v1/project-margins", params={"project_id": project_id})
        answered_cleanly(response)
        assert response.status_code == 404, response.text
        response = process_caller.get("/process/timesheets/v1/time-entries/" + segment(time_entry_id))
        answered_cleanly(response)
        assert response.status_code == 404, response.text


def test_a_period_no_calendar_has_names_nothing(stack: RunningStack) -> None:
    # The contract's pattern (\d{4}-MM) admits year 0000: as a filter it matches no period and no invoice.
    with stack.client("process-tier") as caller:
        for path in ("/system/erp/v1/accounting-periods", "/system/erp/v1/invoices"):
            response = caller.get(path, params={"period": "0000-01"})
            assert response.status_code == 200, response.text
            assert response.json()["items"] == []
