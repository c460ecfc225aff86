"""A person signs out of a page in a real browser: the page revokes their token at the issuer, so a copy of it left
anywhere (a proxy's log, a screenshot of the network panel) stops working at the gateway too."""

from __future__ import annotations

import time

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from tests.gateway.signin_flow import FINANCE_LEAD_USER, SignIn, code_for, password_of, redeem
from tests.support.browser import headless_chromium, sign_in_at_the_issuer
from tests.support.stack import RunningStack


@pytest.mark.parametrize(
    ("page", "session", "api"),
    [
        ("/finance-ops/", "finance.session", "/experience/finance-ops/v1/exceptions?limit=1"),  # the shared flow
        ("/dashboards/", "session", "/experience/dashboards/v1/exceptions-summary"),  # the dashboard's own
    ],
)
def test_signing_out_of_a_page_revokes_the_persons_token(stack: RunningStack, page: str, session: str,
                                                         api: str) -> None:
    with headless_chromium() as driver:
        url = stack.stack.url("experience") + page
        driver.get(url)
        driver.find_element(By.ID, "sign-in-button").click()
        sign_in_at_the_issuer(driver, FINANCE_LEAD_USER, password_of(stack, FINANCE_LEAD_USER), back_to=url)
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "sign-out-button"))
        token = driver.execute_script(f"return {session}.token;")  # what the page holds in memory
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(stack.url + api, headers=bearer, timeout=30).status_code == 200

        signed_in_page = driver.find_element(By.TAG_NAME, "body")
        driver.find_element(By.ID, "sign-out-button").click()
        WebDriverWait(driver, 30).until(staleness_of(signed_in_page))  # the page reloaded, as a fresh one
        # Read on the fresh page only: an element of the page being replaced goes stale under the read.
        WebDriverWait(driver, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
            lambda d: d.find_element(By.ID, "sign-in-button").is_displayed())
        assert not driver.find_element(By.TAG_NAME, "body").get_attribute("data-sign-in")  # a fresh page

    deadline = time.monotonic() + 30  # every gateway worker, once the shared state has the revocation
    answer = httpx.get(stack.url + api, headers=bearer, timeout=30)
    while answer.status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = httpx.get(stack.url + api, headers=bearer, timeout=30)
    assert answer.status_code == 401 and answer.json()["reason"] == "revoked_token", answer.text


def test_a_page_refuses_a_code_it_did_not_ask_for(stack: RunningStack) -> None:
    """Login CSRF / code injection: someone sends the finance lead a link to her page carrying a code of theirs.
    Her page started a sign-in of its own, so it holds a state; the link's state is not it, and the page refuses
    the answer without sending the code anywhere."""
    url = stack.stack.url("experience") + "/finance-ops/"
    theirs = SignIn(client_id="finance-web", redirect_uri=url, verifier="v" * 64, state="their-state")
    with httpx.Client(base_url=stack.url, timeout=30, follow_redirects=False) as http:
        code = code_for(stack, http, theirs, FINANCE_LEAD_USER)
        with headless_chromium() as driver:
            driver.get(url)
            driver.find_element(By.ID, "sign-in-button").click()  # her own sign-in: its state waits in the tab
            WebDriverWait(driver, 30).until(lambda d: "/authorize?" in d.current_url)
            driver.get(f"{url}?code={code}&state={theirs.state}")
            WebDriverWait(driver, 30).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-sign-in") == "failed")
            assert "state mismatch" in driver.find_element(By.ID, "sign-in-status").text
            assert "code=" not in driver.current_url  # the code left the address bar and history
        # The page never presented it: the code is still unused.
        assert redeem(http, theirs, code).status_code == 200
