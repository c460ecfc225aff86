"""The finance-operations page in a real (headless) browser: a finance lead signs in through the gateway's real
sign-in page (authorization code + PKCE), runs month end and works the hold it raised; what the page shows is what
the API recorded, as that person. A consultant is refused."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from gateway.launcher import REPO_ROOT, Ports, Stack
from tests.experience.test_finance_ops import FINANCE_LEAD, FINOPS, held_entry_in_a_closed_month, ok
from tests.gateway.signin_flow import CONSULTANT_USER, FINANCE_LEAD_USER, password_of
from tests.support.browser import headless_chromium, screenshot, sign_in_at_the_issuer
from tests.support.flows import all_items
from tests.support.stack import RunningStack

PAGE = "/finance-ops/"


@pytest.fixture(scope="module")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """Its own stack: the page's origin is the experience tier, which the gateway's CORS policy must allow, and
    this module stops the process tier, which must not disturb the shared stack."""
    ports = Ports.free()
    data_dir: Path = tmp_path_factory.mktemp("psgw-finance-page")
    stack = Stack(data_dir=data_dir, ports=ports, config_file=REPO_ROOT / "gateway.yaml",
                  extra_env={"PSGW_CORS_ORIGINS": f'["http://127.0.0.1:{ports.experience}"]'})
    stack.start()
    try:
        stack.wait_ready(timeout=90)
        yield RunningStack(stack)
    finally:
        stack.stop()


def sign_in(driver: WebDriver, stack: RunningStack, username: str, *, shot: str | None = None) -> None:
    """Open the page, press Sign in, sign in at the gateway's sign-in page as ``username``, and come back."""
    url = stack.stack.url("experience") + PAGE
    driver.get(url)
    driver.find_element(By.ID, "sign-in-button").click()
    WebDriverWait(driver, 30).until(lambda d: "/authorize?" in d.current_url)
    if shot:
        screenshot(driver, shot)
    sign_in_at_the_issuer(driver, username, password_of(stack, username), back_to=url)


def row_of(driver: WebDriver, exception_id: str) -> dict[str, str]:
    row = driver.find_element(By.CSS_SELECTOR, f'#queue-table tr[data-key="{exception_id}"]')
    return {cell.get_attribute("data-field") or "": cell.text
            for cell in row.find_elements(By.CSS_SELECTOR, "td[data-field]")}


def row_when(driver: WebDriver, exception_id: str, state: str) -> dict[str, str]:
    """The item's row once it shows ``state``; looked up again whenever the page re-renders the queue."""
    found: dict[str, str] = {}

    def shows_state(d: WebDriver) -> bool:
        found.update(row_of(d, exception_id))
        return found.get("state") == state

    WebDriverWait(driver, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        shows_state)
    return found


def test_a_finance_lead_runs_month_end_and_works_the_hold_it_raised(page_stack: RunningStack) -> None:
    with page_stack.client("process-tier") as system, page_stack.client("finance-web", subject=FINANCE_LEAD) as api, \
            headless_chromium() as driver:
        entry_id, period = held_entry_in_a_closed_month(system)
        sign_in(driver, page_stack, FINANCE_LEAD_USER, shot="sign-in")
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-queue"))
        assert driver.find_element(By.ID, "signed-in").text.startswith(f"Signed in as {FINANCE_LEAD}.")
        assert "code=" not in driver.current_url  # the code left the address bar at once

        driver.execute_script("document.getElementById('month').value = arguments[0]", period)
        driver.find_element(By.ID, "run-month-end").click()
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "month-end-status").text.endswith("done."))
        assert driver.find_element(By.CSS_SELECTOR, '[data-figure="run_by"]').text == FINANCE_LEAD
        assert "PERIOD_CLOSED" in driver.find_element(By.CSS_SELECTOR, '[data-figure="held_by_reason"]').text

        (item,) = api.get(f"{FINOPS}/exceptions", params={"source_id": entry_id}).json()["items"]
        driver.find_element(By.ID, "filter-reason").send_keys("PERIOD_CLOSED")
        driver.find_element(By.ID, "filter-source").send_keys(entry_id)
        driver.find_element(By.ID, "apply-filters").click()
        shown = row_when(driver, item["id"], "open")
        assert (shown["reasons"], shown["source"], shown["state"]) == ("PERIOD_CLOSED", f"time_entry {entry_id}",
                                                                       "open")

        driver.find_element(By.CSS_SELECTOR, f'[data-select="{item["id"]}"]').click()
        driver.find_element(By.ID, "assign-selected").click()
        assert row_when(driver, item["id"], "assigned")["owner"] == FINANCE_LEAD
        assert driver.find_element(By.ID, "action-status").text.startswith("1 done, 0 refused, 0 failed.")

        driver.find_element(By.CSS_SELECTOR, f'[data-select="{item["id"]}"]').click()
        driver.find_element(By.ID, "resolution").send_keys("Reposted in the open month by journal J-204")
        driver.find_element(By.ID, "resolve-selected").click()
        row_when(driver, item["id"], "resolved")
        screenshot(driver, "finance-ops")

        history = api.get(f"{FINOPS}/exceptions/{item['id']}").json()["history"]
        assert [(h["action"], h["actor_id"]) for h in history if h["action"] in ("assigned", "resolved")] == [
            ("assigned", FINANCE_LEAD), ("resolved", FINANCE_LEAD)]

    # The gateway's audit names the person who pressed the buttons, signed in through the page's own client.
    with page_stack.client("security-admin") as admin:
        deadline = time.monotonic() + 15
        while True:
            calls = [c for c in admin.get("/admin/v1/audit/calls", params={
                "client_id": "finance-web", "api": "experience/finance-ops", "limit": 200}).json()["items"]
                if c["method"] == "POST" and c["route"] == "/exception-actions"]
            if len(calls) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
    assert {(c["subject"], c["issuer"], c["status"]) for c in calls} == {(FINANCE_LEAD, page_stack.url, 200)}


def test_a_consultant_is_refused_and_told_why(page_stack: RunningStack) -> None:
    with headless_chromium() as driver:
        sign_in(driver, page_stack, CONSULTANT_USER)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-sign-in"))
        status = driver.find_element(By.ID, "sign-in-status").text
        assert status.startswith("Sign-in failed. access_denied: ada has no role that grants"), status
        assert not driver.find_element(By.ID, "workspace").is_displayed()


def test_a_wrong_password_keeps_the_person_on_the_sign_in_page(page_stack: RunningStack) -> None:
    url = page_stack.stack.url("experience") + PAGE
    with headless_chromium() as driver:
        driver.get(url)
        driver.find_element(By.ID, "sign-in-button").click()
        WebDriverWait(driver, 30).until(lambda d: "/authorize?" in d.current_url)
        driver.find_element(By.ID, "username").send_keys(FINANCE_LEAD_USER)
        driver.find_element(By.ID, "password").send_keys("not-her-password")
        driver.find_element(By.ID, "sign-in-button").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "sign-in-error"))
        assert driver.find_element(By.ID, "sign-in-error").text == "Wrong username or password."
        assert not driver.current_url.startswith(url)


def test_the_process_tier_down_is_said_plainly(page_stack: RunningStack) -> None:
    with headless_chromium() as driver:
        sign_in(driver, page_stack, FINANCE_LEAD_USER)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-queue"))
        page_stack.stack.kill("process")
        try:
            driver.find_element(By.ID, "run-month-end").click()
            WebDriverWait(driver, 30).until(
                lambda d: d.find_element(By.ID, "month-end-status").text.startswith("Month end did not run."))
            assert "503" in driver.find_element(By.ID, "month-end-status").text or "unavailable" in \
                driver.find_element(By.ID, "month-end-status").text.lower()
        finally:
            page_stack.stack.start(only=["process"])
            page_stack.stack.wait_ready(only=["process"])


def test_the_page_needs_no_token_holds_no_secret_and_locks_itself_down(page_stack: RunningStack) -> None:
    base = page_stack.stack.url("experience")
    page = httpx.get(base + PAGE)
    script = httpx.get(base + "/finance-ops/assets/finance.js")
    unknown = httpx.get(base + "/finance-ops/assets/..%2F..%2Fservice.py")

    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and page_stack.url in csp and "frame-ancestors 'none'" in csp
    assert f'content="{page_stack.url}"' in page.text
    assert script.status_code == 200
    assert not any(s in script.text for s in ("client_secret", "demo-secret", "localStorage"))
    assert '<meta name="client-id" content="finance-web">' in page.text
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")


def test_month_end_run_three_times_at_once_posts_each_entry_once(page_stack: RunningStack) -> None:
    """On this module's own stack: settling the current month queues the demo firm's approved time too."""
    today = dt.datetime.now(dt.UTC).date()
    with page_stack.client("process-tier") as system, page_stack.client("finance-web", subject=FINANCE_LEAD) as lead:
        entry = ok(system.post("/system/psa/v1/time-entries", json={
            "worker_id": "wrk_e1001", "project_id": "prj_4003", "task_id": "tsk_4003-t2",
            "work_date": today.isoformat(), "hours": "3", "notes": "finance-ops concurrent month end"}), 201)
        manager = ok(system.get("/system/psa/v1/projects/prj_4003"))["manager_id"]
        for state, actor in (("submitted", "wrk_e1001"), ("approved", manager)):
            ok(system.post(f"/system/psa/v1/time-entries/{entry['id']}/transitions",
                           json={"to_state": state, "actor_id": actor}))

        def settle(_: int) -> httpx.Response:
            return lead.post(f"{FINOPS}/month-end-settlements", json={"period": today.strftime("%Y-%m")})

        with ThreadPoolExecutor(max_workers=3) as pool:
            runs = [ok(r)["summary"] for r in pool.map(settle, range(3))]
        assert sum(r["queued_for_posting"] for r in runs) >= 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ok(system.get(f"/system/psa/v1/time-entries/{entry['id']}"))[
                "state"] != "posted":
            time.sleep(0.25)
        assert len(all_items(system, "/system/erp/v1/postings", source_id=entry["id"])) == 1
        later = ok(settle(0))["summary"]
        assert later["queued_for_posting"] == 0  # posted already: not selected, not queued again
