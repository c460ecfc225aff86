"""The mobile app signs a consultant in as README's "The mobile app" says: a public client, authorization code +
PKCE S256 through the system browser, the code back at the app's own URI scheme, a token of the person's, and a
revocation by client_id alone on sign-out. The README's curl blocks run here as written, against a started stack."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from urllib.parse import urlencode

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gateway.launcher import REPO_ROOT
from tests.gateway.signin_flow import CONSULTANT_USER, SignIn, claims_of, code_for, password_of, redeem
from tests.support.browser import headless_chromium
from tests.support.stack import RunningStack

APP_CALLBACK = "com.psgateway.time:/oauth2/callback"
ASSIGNMENTS = "/experience/mobile-time/v1/me/assignments"
MARKER = "=== mobile block"


def mobile_blocks() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("**The mobile app.**")
    section = readme[start : readme.index("**With the firm's identity provider.**", start)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def run_blocks(stack: RunningStack) -> tuple[list[str], str]:
    """Every block in one bash, as pasted (only the stack's address and data dir differ); then the token."""
    script = "set -euo pipefail\n"
    for number, block in enumerate(mobile_blocks()):
        block = block.replace("http://127.0.0.1:8080", stack.url).replace(".data/", f"{stack.stack.data_dir}/")
        script += f"echo '{MARKER} {number}'\n{block}\n"
    script += f"echo '{MARKER} token'\necho \"$TOKEN\"\n"
    done = subprocess.run([shutil.which("bash") or "/bin/bash", "-c", script], cwd=REPO_ROOT,
                          env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")},
                          capture_output=True, text=True, timeout=120)
    outputs = re.split(rf"^{MARKER} \w+\n", done.stdout, flags=re.M)[1:]
    assert done.returncode == 0, f"block {len(outputs) - 1} failed:\n{outputs[-1:]}\n{done.stderr}"
    return outputs[:-1], outputs[-1].strip()


def test_the_readme_mobile_sign_in_works_as_pasted(stack: RunningStack) -> None:
    blocks = mobile_blocks()
    assert len(blocks) == 3
    page, signed_in, signed_out = run_blocks(stack)[0]

    assert page.strip() == "200"
    callback, assignments = signed_in.strip().splitlines()
    assert callback.startswith(APP_CALLBACK + "?code=") and "&state=" in callback
    assert '"project_id":"prj_4001"' in assignments, assignments  # Ada's, through every tier

    revoked, replay = signed_out.strip().splitlines()
    assert revoked == "200"
    assert '"error":"invalid_grant"' in replay and "already used" in replay


def test_the_apps_token_is_the_consultants_and_sign_out_ends_it_everywhere(stack: RunningStack) -> None:
    _, token = run_blocks(stack)
    claims = claims_of(token)
    assert (claims["sub"], claims["client_id"]) == ("wrk_e1001", "mobile-app")
    assert set(claims["scope"].split()) == {"time:read", "time:write"}
    # Revoked on sign-out: refused on every gateway worker once the shared state has it.
    deadline = time.monotonic() + 30
    answer = httpx.get(stack.url + ASSIGNMENTS, headers={"Authorization": f"Bearer {token}"})
    while answer.status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = httpx.get(stack.url + ASSIGNMENTS, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and answer.json()["reason"] == "revoked_token", answer.text


def app_sign_in(stack: RunningStack) -> SignIn:
    flow = SignIn.of_page(stack, "mobile-app", "")
    flow.redirect_uri = APP_CALLBACK
    return flow


def test_the_sign_in_page_lets_its_form_send_the_person_back_to_the_app(stack: RunningStack) -> None:
    """CSP form-action covers the redirect after the form: without the app's scheme the browser would stop there."""
    page = httpx.get(stack.url + "/authorize", params=app_sign_in(stack).params(scope="time:read"))
    assert page.status_code == 200, page.text
    assert "form-action 'self' com.psgateway.time:;" in page.headers["content-security-policy"]


def test_the_app_has_no_secret_and_no_way_in_but_a_person(stack: RunningStack) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        for auth in (None, ("mobile-app", "demo-secret-mobile-app")):
            machine = http.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": "mobile-app"},
                                auth=auth)
            assert machine.status_code in (400, 401), machine.text
            assert machine.json()["error"] in ("invalid_client", "unauthorized_client")
        # A web origin may not pose as the app: its redirect URI is the app's scheme, nothing else.
        flow = app_sign_in(stack)
        for elsewhere in ("https://evil.example/oauth2/callback", "com.psgateway.time:/other",
                          "com.psgateway.time://oauth2/callback", stack.stack.url("experience") + "/time/"):
            wrong = http.get("/authorize", params=flow.params(redirect_uri=elsewhere))
            assert wrong.status_code == 400 and "location" not in wrong.headers, elsewhere


def test_a_public_client_revokes_only_its_own_tokens_and_introspects_none(stack: RunningStack) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        flow = app_sign_in(stack)
        token = redeem(http, flow, code_for(stack, http, flow, CONSULTANT_USER)).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}

        # A public client proves nothing about itself: it may not ask what a token is.
        for anonymous in ({"token": token, "client_id": "mobile-app"}, {"token": token}):
            looked = http.post("/oauth2/introspect", data=anonymous)
            assert looked.status_code == 401 and looked.json()["error"] == "invalid_client", looked.text
            assert "active" not in looked.json()
        # Another public client cannot sign the app's person out, nor can the app pass for a confidential client.
        foreign = http.post("/oauth2/revoke", data={"token": token, "client_id": "dashboard-web"})
        assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_grant", foreign.text
        impostor = http.post("/oauth2/revoke", data={"token": token, "client_id": "experience-tier"})
        assert impostor.status_code == 401 and impostor.json()["error"] == "invalid_client", impostor.text
        time.sleep(1)
        assert http.get(ASSIGNMENTS, headers=bearer).status_code == 200

        assert http.post("/oauth2/revoke", data={"token": token, "client_id": "mobile-app"}).status_code == 200
        deadline = time.monotonic() + 30
        while http.get(ASSIGNMENTS, headers=bearer).status_code != 401 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http.get(ASSIGNMENTS, headers=bearer).json()["reason"] == "revoked_token"

        # Anyone holding the token may revoke it again, as often as they like: only the first time changes state
        # (each change recompiles the gateway's live state on every worker).
        swaps_before = state_swaps_for_revocations(stack)
        assert swaps_before >= 1  # the first revocation did change it
        for _ in range(5):
            assert http.post("/oauth2/revoke", data={"token": token, "client_id": "mobile-app"}).status_code == 200
        time.sleep(2)
        assert state_swaps_for_revocations(stack) == swaps_before


def state_swaps_for_revocations(stack: RunningStack) -> int:
    return sum(log.read_text(errors="replace").count('"reason":"token revoked"')
               for log in (stack.stack.data_dir / "logs").glob("gateway*.log"))


def test_in_a_real_browser_the_sign_in_form_hands_the_code_to_the_app(stack: RunningStack) -> None:
    """Chromium as the system browser the app opens: the form's redirect to the app's scheme is not blocked by the
    page's own Content-Security-Policy (form-action covers redirects after a form), and a code is issued."""
    flow = app_sign_in(stack)

    def codes_issued() -> int:
        with sqlite3.connect(stack.stack.data_dir / "gateway.db") as db:
            try:
                return int(db.execute("SELECT COUNT(*) FROM gateway_authorization_codes "
                                      "WHERE client_id = 'mobile-app'").fetchone()[0])
            except sqlite3.OperationalError:  # no code issued on this stack yet: the table comes with the first
                return 0

    before = codes_issued()
    with headless_chromium() as driver:
        driver.get(stack.url + "/authorize?" + urlencode(flow.params(scope="time:read time:write")))
        driver.execute_script(
            "window.violations = [];"
            "document.addEventListener('securitypolicyviolation', e => window.violations.push(e.effectiveDirective));")
        driver.find_element(By.ID, "username").send_keys(CONSULTANT_USER)
        driver.find_element(By.ID, "password").send_keys(password_of(stack, CONSULTANT_USER))
        driver.find_element(By.ID, "sign-in-button").click()
        WebDriverWait(driver, 30).until(lambda _: codes_issued() > before)
        time.sleep(1)  # a blocked redirect reports its violation right after the answer arrives
        violations = driver.execute_script("return window.violations === undefined ? [] : window.violations;")
    assert violations == [], violations
