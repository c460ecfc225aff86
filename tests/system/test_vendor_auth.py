"""Vendor authentication: each sandbox refuses calls without its vendor's credentials, in the vendor's 401 shape;
the connectors authenticate with the stack's generated credentials and fetch a new token when one expires."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from runtime.problems import ProblemError
from system_apis.hr.connectors.sandbox import SandboxHr
from system_apis.vendor_auth import VendorCredentials
from tests.support.stack import RunningStack
from tests.system.conftest import SystemApis
from tests.system.vendor_access import TOKEN_PATHS, vendor_client


def test_a_call_without_a_token_gets_the_vendors_401(stack: RunningStack) -> None:
    crm = httpx.get(stack.stack.url("sandbox-crm") + "/services/data/v60.0/sobjects/Account/AccountNumber/C-1001")
    assert crm.status_code == 401
    assert crm.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}]
    hr = httpx.get(stack.stack.url("sandbox-hr") + "/ccx/api/v1/northwind/workers")
    assert hr.status_code == 401 and hr.json() == {"error": "invalid access token"}


def test_wrong_client_credentials_and_a_forged_assertion_are_refused(stack: RunningStack) -> None:
    wrong = httpx.post(
        stack.stack.url("sandbox-hr") + TOKEN_PATHS["hr"],
        data={"grant_type": "client_credentials"},
        auth=("psgw-hr-someone", "not-the-secret"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    forged = httpx.post(
        stack.stack.url("sandbox-crm") + TOKEN_PATHS["crm"],
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "e30.e30.x"},
    )
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("credentials", [None, VendorCredentials(client_id="psgw-hr-x", client_secret="wrong")])
def test_a_connector_without_the_right_credentials_fails_clearly(
    stack: RunningStack, credentials: VendorCredentials | None
) -> None:
    async def read() -> ProblemError:
        hr = SandboxHr(stack.stack.url("sandbox-hr"), 5.0, credentials=credentials)
        try:
            await hr.get_worker("wrk_e1001")
        except ProblemError as problem:
            return problem
        finally:
            await hr.aclose()
        raise AssertionError("the vendor answered without credentials")

    problem = asyncio.run(read())
    assert problem.status == 502 and "sandbox-hr" in str(problem.detail) and "401" in str(problem.detail)
    assert "credentials" in str(problem.detail)


@pytest.mark.parametrize(
    ("system", "read", "path"),
    [
        ("crm", "/rate-cards/{rate_card_id}", {"rate_card_id": "rc_usd"}),
        ("hr", "/workers/{worker_id}", {"worker_id": "wrk_e1001"}),
    ],
)
def test_an_expired_token_is_replaced_and_the_call_succeeds(
    stack: RunningStack, apis: SystemApis, system: str, read: str, path: dict[str, str]
) -> None:
    apis.call("GET", system, read, 200, path=path)  # the connector holds a token
    with vendor_client(stack, system) as vendor:
        issued = vendor.delete("/_sandbox/auth").json()["issued"]  # every token the vendor issued expires now

        apis.call("GET", system, read, 200, path=path)

        assert vendor.get("/_sandbox/auth").json()["issued"] > issued  # the connector fetched a new one


@pytest.mark.parametrize(
    ("system", "path", "code"),
    [
        ("psa", "/api/v3/projects", "INVALID_TOKEN"),
        ("erp", "/api/v1/customers", "INVALID_LOGIN"),
    ],
)
def test_the_psa_and_erp_refuse_a_call_without_a_token_in_their_own_shape(
    stack: RunningStack, system: str, path: str, code: str
) -> None:
    refused = httpx.get(stack.stack.url(f"sandbox-{system}") + path)
    assert refused.status_code == 401 and code in refused.text
    with vendor_client(stack, system) as vendor:
        assert vendor.get(path).status_code == 200
