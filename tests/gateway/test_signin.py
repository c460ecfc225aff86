"""People sign in at the built-in issuer (authorization code + PKCE S256) and get tokens of their own: what a page
relies on, and what an attacker tries on /authorize and the token endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.signin.codes import CodeStore, IssuedCode, _digest
from gateway.signin.people import demo_passwords
from tests.gateway.signin_flow import (
    CONSULTANT_USER,
    FINANCE_LEAD_USER,
    MANAGER_USER,
    SignIn,
    claims_of,
    code_for,
    password_of,
    redeem,
    redirected,
    submit,
)
from tests.support.stack import RunningStack

FINOPS = "/experience/finance-ops/v1"


@pytest.fixture
def http(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30.0, follow_redirects=False) as client:
        yield client


@pytest.fixture
def finance(stack: RunningStack) -> SignIn:
    return SignIn.of_page(stack, "finance-web", "/finance-ops/")


def oauth_error_of(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["error"] == error, body
    return str(body["error_description"])


def test_a_finance_lead_signs_in_and_acts_as_herself(stack: RunningStack, http: httpx.Client, finance: SignIn) -> None:
    page = http.get("/authorize", params=finance.params())
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "Finance operations" in page.text and "finance:month-end" in page.text
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and f"form-action 'self' {stack.stack.url('experience')}" in csp
    style = page.text.split("<style>")[1].split("</style>")[0]  # the page's only style, allowed by its hash
    assert f"style-src 'sha256-{base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()}'" in csp

    code = code_for(stack, http, finance, FINANCE_LEAD_USER)
    token = redeem(http, finance, code)
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    claims = claims_of(body["access_token"])
    assert (claims["sub"], claims["client_id"]) == ("wrk_e1003", "finance-web")
    assert set(claims["scope"].split()) == {"finance:read", "finance:write", "finance:month-end"}

    queue = http.get(
        f"{FINOPS}/exceptions", params={"limit": 1}, headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert queue.status_code == 200, queue.text


def test_a_person_gets_only_what_their_roles_and_the_client_allow(stack: RunningStack, http: httpx.Client) -> None:
    dashboards = SignIn.of_page(stack, "dashboard-web", "/dashboards/")
    token = redeem(http, dashboards, code_for(stack, http, dashboards, MANAGER_USER)).json()["access_token"]
    # The manager's roles grant time, approvals and dashboards; the client is registered for those same four.
    assert set(claims_of(token)["scope"].split()) == {
        "time:read",
        "approvals:read",
        "approvals:write",
        "dashboards:read",
    }
    narrowed = redeem(
        http, dashboards, code_for(stack, http, dashboards, FINANCE_LEAD_USER, scope="dashboards:read approvals:write")
    ).json()["access_token"]
    assert claims_of(narrowed)["scope"] == "dashboards:read"  # approvals:write is not a finance lead's


def test_a_person_without_the_role_is_sent_back_with_access_denied(
    stack: RunningStack, http: httpx.Client, finance: SignIn
) -> None:
    response = submit(http, finance.params(), CONSULTANT_USER, password_of(stack, CONSULTANT_USER))
    assert response.status_code == 303
    target, params = redirected(response)
    assert target == finance.redirect_uri and "code" not in params
    assert (params["error"], params["state"]) == ("access_denied", finance.state)
    assert "ada has no role" in params["error_description"]


def test_a_wrong_password_shows_the_page_again_and_says_nothing_about_the_username(
    stack: RunningStack, http: httpx.Client, finance: SignIn
) -> None:
    wrong = submit(http, finance.params(), FINANCE_LEAD_USER, "not-her-password")
    unknown = submit(http, finance.params(), "mallory", "whatever")
    assert wrong.status_code == unknown.status_code == 401
    assert "location" not in wrong.headers
    assert "Wrong username or password." in wrong.text and "Wrong username or password." in unknown.text


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"redirect_uri": "https://evil.example/finance-ops/"}, "not supported by client"),
        ({"redirect_uri": "http://127.0.0.1:1/finance-ops/"}, "not supported by client"),
        ({"redirect_uri": None}, "redirect_uri"),
        ({"client_id": "no-such-client"}, "does not exist"),
        ({"client_id": None}, "client_id"),
        ({"client_id": "experience-tier"}, "not supported by client"),  # a tier's client signs nobody in
    ],
)
def test_a_request_that_cannot_be_trusted_to_redirect_is_a_400_and_goes_nowhere(
    http: httpx.Client, finance: SignIn, changes: dict[str, str | None], why: str
) -> None:
    for response in (
        http.get("/authorize", params=finance.params(**changes)),
        submit(http, finance.params(**changes), FINANCE_LEAD_USER, "x"),
    ):
        assert "location" not in response.headers
        assert response.status_code == 400
        assert why in response.json()["error_description"]


def test_the_wrong_redirect_uri_check_is_exact(stack: RunningStack, http: httpx.Client, finance: SignIn) -> None:
    for near in (
        finance.redirect_uri + "x",
        finance.redirect_uri.rstrip("/"),
        finance.redirect_uri + "?a=1",
        finance.redirect_uri.replace("127.0.0.1", "localhost"),
    ):
        response = http.get("/authorize", params=finance.params(redirect_uri=near))
        assert response.status_code == 400 and "location" not in response.headers, near


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "code_challenge is required"),
        ({"code_challenge_method": "plain"}, "must be S256"),
        ({"code_challenge_method": None}, "must be S256"),
        ({"code_challenge": "short"}, "Invalid 'code_challenge'"),
        ({"response_type": "token"}, ""),
        ({"scope": "finance:read admin:write"}, "admin:write"),
    ],
)
def test_a_bad_request_from_a_known_page_goes_back_to_it_with_error(
    http: httpx.Client, finance: SignIn, changes: dict[str, str | None], why: str
) -> None:
    response = http.get("/authorize", params=finance.params(**changes))
    assert response.status_code == 302, response.text
    target, params = redirected(response)
    assert target == finance.redirect_uri and params["state"] == finance.state
    assert params["error"] in ("invalid_request", "invalid_scope", "unauthorized_client", "unsupported_response_type")
    assert why in params.get("error_description", ""), params


def test_control_characters_and_huge_parameters_are_refused_before_anything_else(
    http: httpx.Client, finance: SignIn
) -> None:
    crlf = http.get("/authorize", params=finance.params(state="a\r\nSet-Cookie: x=1"))
    assert "control characters" in oauth_error_of(crlf, 400, "invalid_request")
    assert "location" not in crlf.headers and "set-cookie" not in crlf.headers
    huge_state = http.get("/authorize", params=finance.params(state="s" * 5000))
    assert "too long" in oauth_error_of(huge_state, 400, "invalid_request")
    huge_query = http.get("/authorize", params={**finance.params(), **{f"p{i}": "v" * 200 for i in range(60)}})
    assert "exceed" in oauth_error_of(huge_query, 400, "invalid_request")
    huge_form = http.post("/authorize", data={**finance.params(), "username": "chloe", "password": "p" * 20_000})
    assert "exceed" in oauth_error_of(huge_form, 400, "invalid_request")
    not_a_form = http.post("/authorize", json=finance.params())
    assert "x-www-form-urlencoded" in oauth_error_of(not_a_form, 400, "invalid_request")


def test_a_code_works_once_and_its_replay_revokes_the_token(
    stack: RunningStack, http: httpx.Client, finance: SignIn
) -> None:
    code = code_for(stack, http, finance, FINANCE_LEAD_USER)
    first = redeem(http, finance, code)
    assert first.status_code == 200
    token = first.json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert http.get(f"{FINOPS}/exceptions", params={"limit": 1}, headers=bearer).status_code == 200

    replay = redeem(http, finance, code)
    assert "already used" in oauth_error_of(replay, 400, "invalid_grant")
    deadline = time.monotonic() + 30  # the revocation reaches every gateway instance through the shared state
    while time.monotonic() < deadline and http.get(f"{FINOPS}/exceptions", headers=bearer).status_code != 401:
        time.sleep(0.2)
    assert http.get(f"{FINOPS}/exceptions", headers=bearer).status_code == 401


def test_of_concurrent_redemptions_of_one_code_none_keeps_a_working_token(
    stack: RunningStack, http: httpx.Client, finance: SignIn
) -> None:
    """One code presented six times at once (an attacker racing the page): at most one answer carries a token, and
    that token is revoked, since the code was used more than once (RFC 6749 section 4.1.2)."""
    code = code_for(stack, http, finance, FINANCE_LEAD_USER)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: redeem(http, finance, code), range(6)))
    issued = [a.json()["access_token"] for a in answers if a.status_code == 200]
    assert len(issued) <= 1 and sorted(a.status_code for a in answers)[1:] == [400] * 5
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code == 400)
    for token in issued:
        bearer = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 30
        while http.get(f"{FINOPS}/exceptions", headers=bearer).status_code != 401 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http.get(f"{FINOPS}/exceptions", headers=bearer).json()["reason"] == "revoked_token"


async def test_a_replay_while_the_first_answer_is_on_its_way_stops_that_answer(tmp_path: Path) -> None:
    """The window between redeeming a code and recording the token it gave: a replay inside it is not lost."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'codes.db'}")
    store = CodeStore(engine)
    await store.create_schema()
    for replayed in (False, True):
        code = f"code-{replayed}"
        await store.save(IssuedCode(code=code, client_id="finance-web", redirect_uri="https://p.example/",
                                    subject="wrk_e1003", scope="finance:read", code_challenge="c" * 43,
                                    expires_at=time.time() + 60))
        assert (await store.redeem(code)).code is not None
        if replayed:
            again = await store.redeem(code)
            assert again.code is None and again.replayed_jti is None  # nothing recorded yet to revoke
        assert await store.record_token(code, f"jti-{replayed}", time.time() + 900) is not replayed
        late = await store.redeem(code)
        assert late.replayed_jti == (None if replayed else "jti-False")  # a later replay revokes what was given
    await engine.dispose()


def test_a_code_is_bound_to_its_client_redirect_uri_and_verifier(
    stack: RunningStack, http: httpx.Client, finance: SignIn
) -> None:
    dashboards = SignIn.of_page(stack, "dashboard-web", "/dashboards/")
    other_client = redeem(
        http,
        dashboards,
        code_for(stack, http, finance, FINANCE_LEAD_USER),
        redirect_uri=finance.redirect_uri,
        code_verifier=finance.verifier,
    )
    assert "another client" in oauth_error_of(other_client, 400, "invalid_grant")

    wrong_redirect = redeem(
        http, finance, code_for(stack, http, finance, FINANCE_LEAD_USER), redirect_uri=dashboards.redirect_uri
    )
    assert "redirect_uri" in oauth_error_of(wrong_redirect, 400, "invalid_grant")
    no_redirect = redeem(http, finance, code_for(stack, http, finance, FINANCE_LEAD_USER), redirect_uri=None)
    assert "redirect_uri" in oauth_error_of(no_redirect, 400, "invalid_grant")

    wrong_verifier = redeem(
        http, finance, code_for(stack, http, finance, FINANCE_LEAD_USER), code_verifier=dashboards.verifier
    )
    assert "challenge failed" in oauth_error_of(wrong_verifier, 400, "invalid_grant")

    no_verifier = redeem(http, finance, code_for(stack, http, finance, FINANCE_LEAD_USER), code_verifier=None)
    assert "code_verifier" in oauth_error_of(no_verifier, 400, "invalid_request")

    unknown = redeem(http, finance, "not-a-code-we-issued")
    assert "not known" in oauth_error_of(unknown, 400, "invalid_grant")


def test_an_expired_code_is_refused(stack: RunningStack, http: httpx.Client, finance: SignIn) -> None:
    code = code_for(stack, http, finance, FINANCE_LEAD_USER)
    # The code's 60 seconds pass (set in the gateway's own database rather than waited for).
    with sqlite3.connect(stack.stack.data_dir / "gateway.db") as db:
        db.execute(
            "UPDATE gateway_authorization_codes SET expires_at = expires_at - 61 WHERE code_hash = ?", (_digest(code),)
        )
    assert "expired" in oauth_error_of(redeem(http, finance, code), 400, "invalid_grant")


def test_a_public_page_client_has_no_other_way_in(http: httpx.Client, finance: SignIn) -> None:
    machine = http.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": "finance-web"})
    assert machine.status_code in (400, 401) and machine.json()["error"] in ("invalid_client", "unauthorized_client")
    with_a_secret = http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=("finance-web", "demo-secret-finance-web")
    )
    assert with_a_secret.json()["error"] == "invalid_client"


def test_the_page_may_read_the_token_answer_and_others_may_not(
    stack: RunningStack, http: httpx.Client, finance: SignIn
) -> None:
    page_origin = stack.stack.url("experience")
    code = code_for(stack, http, finance, FINANCE_LEAD_USER)
    ok = redeem(http, finance, code)
    assert ok.status_code == 200
    mine = http.post(
        "/oauth2/token", data={"grant_type": "authorization_code", "code": "x"}, headers={"Origin": page_origin}
    )
    theirs = http.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert mine.headers["access-control-allow-origin"] == page_origin
    assert "access-control-allow-origin" not in theirs.headers


def test_discovery_names_the_authorization_endpoint_and_s256(http: httpx.Client, stack: RunningStack) -> None:
    discovery = http.get("/.well-known/openid-configuration").json()
    assert discovery["authorization_endpoint"] == stack.url + "/authorize"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in discovery["grant_types_supported"]


def test_demo_passwords_are_generated_kept_private_and_stored_only_as_salted_hashes(stack: RunningStack) -> None:
    from gateway.cli import _demo_people

    issuer_dir = stack.stack.data_dir / "issuer"
    passwords = dict(demo_passwords(issuer_dir))
    hashes = json.loads((issuer_dir / "people.json").read_text())
    assert set(passwords) == set(hashes) == {FINANCE_LEAD_USER, CONSULTANT_USER, MANAGER_USER}
    assert all(h.startswith("scrypt$") and passwords[u] not in h for u, h in hashes.items())
    assert len(set(passwords.values())) == 3 and all(len(p) >= 16 for p in passwords.values())
    assert stat.S_IMODE((issuer_dir / "demo-passwords.txt").stat().st_mode) == 0o600
    assert f"chloe / {passwords['chloe']}" in _demo_people(stack.stack.data_dir)  # what `psgw up` prints


FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("endpoint", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"])
@pytest.mark.parametrize(
    ("request_kwargs", "status", "error"),
    [
        ({"content": b"grant_type=client_credentials&x=" + b"a" * 100_000, "headers": FORM}, 413, None),
        ({"json": {"grant_type": "client_credentials", "token": "x"}}, 400, "invalid_request"),
        ({"content": b"grant_type=client_credentials&token=x"}, 400, "invalid_request"),  # no content type
        ({"content": b"grant_type=\xff\xfe&token=\xff", "headers": FORM}, 400, "invalid_request"),
        ({"content": b"\x1f\x8b\x08 not a form", "headers": {**FORM, "content-encoding": "gzip"}}, 400,
         "invalid_request"),
        ({"content": b"grant_type=authorization_code&client_id=finance-web%0d%0aSet-Cookie:%20x=1&code=a%0d%0ab"
                     b"&token=a%0d%0a", "headers": FORM}, 401, "invalid_client"),
        ({"data": {"grant_type": "client_credentials", "token": "x"}, "headers": {"authorization": "Basic !!"}}, 401,
         "invalid_client"),
        ({"data": {"grant_type": "client_credentials", "token": "x"}, "headers": {"authorization": "Basic /w=="}},
         401, "invalid_client"),
        # RFC 6749 3.1: a parameter sent twice is invalid_request, not "the first one wins".
        ({"content": b"grant_type=client_credentials&client_id=finance-web&client_id=process-tier&token=a&token=b",
          "headers": FORM}, 400, "invalid_request"),
    ],
    ids=["huge", "json", "no-content-type", "not-utf8", "gzip-garbage", "crlf", "basic-not-base64",
         "basic-not-utf8", "repeated-parameter"],
)
def test_hostile_bodies_get_an_oauth_error_never_a_500(
    http: httpx.Client, endpoint: str, request_kwargs: dict[str, object], status: int, error: str | None
) -> None:
    response = http.post(endpoint, **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "set-cookie" not in response.headers
    if error:
        assert response.json()["error"] == error, response.text


def test_revocation_finds_the_token_whatever_type_the_client_hints(
    stack: RunningStack, http: httpx.Client, finance: SignIn
) -> None:
    """Client libraries send token_type_hint=refresh_token on sign-out; refusing the hint would leave it valid."""
    token = redeem(http, finance, code_for(stack, http, finance, FINANCE_LEAD_USER)).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    revoked = http.post(
        "/oauth2/revoke", data={"token": token, "token_type_hint": "refresh_token", "client_id": "finance-web"}
    )
    assert revoked.status_code == 200, revoked.text
    deadline = time.monotonic() + 30
    while http.get(f"{FINOPS}/exceptions", headers=bearer).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert http.get(f"{FINOPS}/exceptions", headers=bearer).json()["reason"] == "revoked_token"
    missing = http.post("/oauth2/revoke", data={"token": "", "client_id": "finance-web"})
    assert "token" in oauth_error_of(missing, 400, "invalid_request")
