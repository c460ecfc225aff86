"""The consultant's time page and the manager's approvals page in a real (headless) browser, each person signed in
through the gateway's real sign-in page (authorization code + PKCE): Ada logs time and submits her week, Ben approves
it, and it is posted to the ERP once; a rejection reaches Ada with its reason; Ben never sees his own time; a
correction goes from Ada's page to Ben's; offline entries wait in the browser and are sent once; a person without
the role is refused."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.gateway.signin_flow import CONSULTANT_USER, FINANCE_LEAD_USER, MANAGER_USER, password_of
from tests.support.browser import headless_chromium, screenshot, sign_in_on_page, text_when
from tests.support.days import a_day_of_its_own, week_of
from tests.support.stack import DEMO_CONSULTANT, DEMO_MANAGER, RunningStack

MOBILE = "/experience/mobile-time/v2"
INBOX = "/experience/approvals/v1"
T = TypeVar("T")
PROJECT = "prj_4001"  # the demo consultant works on it and the demo manager manages it


@pytest.fixture
def ada(stack: RunningStack) -> Iterator[httpx.Client]:
    """The consultant's own calls, as her page makes them (client time-web)."""
    with stack.client("time-web", subject=DEMO_CONSULTANT) as client:
        yield client


@pytest.fixture
def ben_api(stack: RunningStack) -> Iterator[httpx.Client]:
    with stack.client("approvals-web", subject=DEMO_MANAGER) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def submitted(client: httpx.Client, minutes: int, notes: str) -> tuple[str, str]:
    """A fresh entry on the demo project by the client's person, on a day of its own, submitted: (id, day)."""
    day = a_day_of_its_own()
    entry = ok(
        client.post(
            f"{MOBILE}/me/time-entries",
            json={
                "project_id": PROJECT,
                "work_date": day.isoformat(),
                "minutes": minutes,
                "work_type": "billable_delivery",
                "notes": notes,
                "client_ref": "page-" + uuid.uuid4().hex[:12],
            },
        ),
        201,
    )
    ok(client.post(f"{MOBILE}/me/weeks/{week_of(day).isoformat()}/submissions"))
    return entry["time_entry_id"], day.isoformat()


def open_page(driver: WebDriver, stack: RunningStack, page: str, username: str, *, shot: str | None = None) -> str:
    url = stack.stack.url("experience") + page
    sign_in_on_page(driver, url, username, password_of(stack, username), shot=shot)
    return url


def show_week_of(driver: WebDriver, day: str) -> None:
    driver.execute_script(
        "const input = document.getElementById('week-day'); input.value = arguments[0];"
        "input.dispatchEvent(new Event('change'));",
        day,
    )
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-week") == week_of_text(day)
    )


def week_of_text(day: str) -> str:
    return week_of(dt.date.fromisoformat(day)).isoformat()


def until(driver: WebDriver, found: Callable[[WebDriver], T]) -> T:
    """``found``'s answer once it has one, looking again whenever the page re-renders under it."""
    return WebDriverWait(driver, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        found
    )


def week_row(driver: WebDriver, entry_id: str) -> dict[str, str]:
    row = driver.find_element(By.CSS_SELECTOR, f'#week-table tr[data-key="{entry_id}"]')
    cells = {
        cell.get_attribute("data-field") or "": cell.text for cell in row.find_elements(By.CSS_SELECTOR, "[data-field]")
    }
    return {**cells, "row": row.text}


def inbox_ids(driver: WebDriver) -> set[str]:
    return {str(r.get_attribute("data-key")) for r in driver.find_elements(By.CSS_SELECTOR, "#inbox-table tbody tr")}


def wait_for_inbox(driver: WebDriver) -> None:
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-inbox"))


def log_on_the_page(driver: WebDriver, day: str, minutes: int, notes: str,
                    work_type: str = "billable_delivery") -> None:
    driver.execute_script("document.getElementById('log-date').value = arguments[0]", day)
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'#log-project option[value="{PROJECT}"]'))
    Select(driver.find_element(By.ID, "log-project")).select_by_value(PROJECT)
    driver.find_element(By.ID, "log-minutes").send_keys(str(minutes))
    Select(driver.find_element(By.ID, "log-work-type")).select_by_value(work_type)
    driver.find_element(By.ID, "log-notes").send_keys(notes)
    driver.find_element(By.ID, "log-button").click()


def test_ada_logs_travel_time_from_the_work_type_list(stack: RunningStack) -> None:
    day = a_day_of_its_own().isoformat()
    notes = "Train to Contoso " + uuid.uuid4().hex[:6]
    with headless_chromium() as driver:
        open_page(driver, stack, "/time/", CONSULTANT_USER)
        offered = [o.text for o in Select(driver.find_element(By.ID, "log-work-type")).options]
        log_on_the_page(driver, day, 95, notes, work_type="travel")
        assert text_when(driver, "log-status", "Logged") == f"Logged 1:35 on {day} (draft)."
        entry_id = until(driver, lambda d: next((r.get_attribute("data-key") for r in d.find_elements(
            By.CSS_SELECTOR, "#week-table tbody tr") if notes in r.text), None))
        shown = until(driver, lambda d: week_row(d, entry_id))

    assert any(text.startswith("Travel") for text in offered), offered
    assert "Travel" in shown["row"] and shown["time"] == "1:35", shown
    with stack.client("process-tier") as system:
        stored = system.get(f"/system/psa/v1/time-entries/{entry_id}").json()
    assert (stored["activity"], stored["minutes"]) == ("travel", 95)


def test_ada_logs_and_submits_ben_approves_and_it_is_posted_once(stack: RunningStack) -> None:
    day = a_day_of_its_own().isoformat()
    notes = "Pricing workshop " + uuid.uuid4().hex[:6]
    with headless_chromium() as driver:
        driver.set_window_size(420, 900)  # a phone's width: the page is made for it
        open_page(driver, stack, "/time/", CONSULTANT_USER)
        assert driver.find_element(By.ID, "signed-in").text.startswith(f"Signed in as {DEMO_CONSULTANT}.")
        assert "code=" not in driver.current_url
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#assignments-table tbody tr"))
        assert "Pricing" in driver.find_element(By.ID, "assignments-table").text

        log_on_the_page(driver, day, 150, notes)
        assert text_when(driver, "log-status", "Logged") == f"Logged 2:30 on {day} (draft)."
        entry_id = until(
            driver,
            lambda d: next(
                (
                    r.get_attribute("data-key")
                    for r in d.find_elements(By.CSS_SELECTOR, "#week-table tbody tr")
                    if notes in r.text
                ),
                None,
            ),
        )
        shown = until(driver, lambda d: week_row(d, entry_id))
        assert (shown["state"], shown["time"]) == ("draft", "2:30")

        driver.find_element(By.ID, "submit-week").click()
        text_when(driver, "week-status", "submitted,")
        until(driver, lambda d: week_row(d, entry_id)["state"] == "submitted")
        driver.execute_script("document.getElementById('week').scrollIntoView()")
        screenshot(driver, "time")

    with headless_chromium() as driver:
        open_page(driver, stack, "/approvals/", MANAGER_USER)
        wait_for_inbox(driver)
        assert entry_id in inbox_ids(driver)
        row = driver.find_element(By.CSS_SELECTOR, f'#inbox-table tr[data-key="{entry_id}"]')
        assert DEMO_CONSULTANT in row.text and "2.5" in row.text and notes in row.text
        driver.find_element(By.CSS_SELECTOR, f'[data-select="{entry_id}"]').click()
        driver.find_element(By.ID, "approve-selected").click()
        assert text_when(driver, "decision-status", "approved,").startswith("1 approved, 0 rejected, 0 not decided.")
        result = driver.find_element(By.CSS_SELECTOR, f'#decision-results li[data-key="{entry_id}"]').text
        assert result.startswith(f"{entry_id}: approved — queued for posting"), result
        # the inbox re-renders after a decision: a row read mid-render is stale, so read again
        WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: entry_id not in inbox_ids(d))
        driver.execute_script("window.scrollTo(0, 0)")
        screenshot(driver, "approvals")

    # Posted to the ERP once, and the consultant sees it so on her page.
    with stack.client("process-tier") as system:
        deadline = time.monotonic() + 60
        while system.get(f"/system/psa/v1/time-entries/{entry_id}").json()["state"] != "posted":
            assert time.monotonic() < deadline, "the approved entry was never posted"
            time.sleep(0.25)
        postings = ok(system.get("/system/erp/v1/postings", params={"source_id": entry_id}))["items"]
    assert len(postings) == 1
    with headless_chromium() as driver:
        open_page(driver, stack, "/time/", CONSULTANT_USER)
        show_week_of(driver, day)
        assert until(driver, lambda d: week_row(d, entry_id))["state"] == "posted"
        assert driver.find_element(By.CSS_SELECTOR, f'[data-correct="{entry_id}"]').text == "Ask for a correction"


def test_a_rejection_reaches_ada_with_its_reason_and_ben_never_sees_his_own_time(
    stack: RunningStack, ada: httpx.Client, ben_api: httpx.Client
) -> None:
    adas, day = submitted(ada, 60, "Data mapping")
    with stack.client("time-web", subject=DEMO_MANAGER) as ben_logs:
        bens, _ = submitted(ben_logs, 90, "Steering committee")
    reason = "Wrong project: book this on the data platform work"

    with headless_chromium() as driver:
        open_page(driver, stack, "/approvals/", MANAGER_USER)
        wait_for_inbox(driver)
        assert driver.find_element(By.ID, "signed-in").text.startswith(f"Signed in as {DEMO_MANAGER}.")
        shown = inbox_ids(driver)
        assert adas in shown and bens not in shown  # separation of duties: his own time waits elsewhere
        driver.find_element(By.CSS_SELECTOR, f'[data-select="{adas}"]').click()
        driver.find_element(By.ID, "reject-selected").click()
        assert (
            text_when(driver, "decision-status", "Say why") == "Say why you reject it: the consultant sees your reason."
        )
        driver.find_element(By.ID, "decision-reason").send_keys(reason)
        driver.find_element(By.ID, "reject-selected").click()
        assert text_when(driver, "decision-status", "rejected,").startswith("0 approved, 1 rejected, 0 not decided.")

    # Nor can he decide it by calling the API himself.
    own = ben_api.post(f"{INBOX}/submitted-entries/{bens}/decisions", json={"decision": "approve"})
    assert own.status_code == 403 and own.headers["content-type"].startswith("application/problem+json"), own.text

    with headless_chromium() as driver:
        open_page(driver, stack, "/time/", CONSULTANT_USER)
        show_week_of(driver, day)
        row = until(driver, lambda d: week_row(d, adas))
        assert row["state"].startswith("rejected") and row["reason"] == f"Reason: {reason}"


def test_ada_asks_for_a_correction_and_ben_decides_it(
    stack: RunningStack, ada: httpx.Client, ben_api: httpx.Client
) -> None:
    entry_id, day = submitted(ada, 120, "Workshop prep")
    ok(
        ben_api.post(
            f"{INBOX}/submitted-entries/{entry_id}/decisions",
            json={"decision": "approve"},
            headers={"Idempotency-Key": "page-approve-" + entry_id},
        )
    )

    with headless_chromium() as driver:
        open_page(driver, stack, "/time/", CONSULTANT_USER)
        show_week_of(driver, day)
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-correct="{entry_id}"]'))
        driver.find_element(By.CSS_SELECTOR, f'[data-correct="{entry_id}"]').click()
        minutes = driver.find_element(By.ID, "correction-minutes")
        minutes.clear()
        minutes.send_keys("90")
        driver.find_element(By.ID, "correction-reason").send_keys("Prep ran 30 minutes shorter")
        driver.find_element(By.ID, "correction-submit").click()
        asked = text_when(driver, "correction-status", "asked for")
        assert asked.endswith("asked for (requested): your manager decides."), asked
        correction_id = asked.split()[1]

    with headless_chromium() as driver:
        open_page(driver, stack, "/approvals/", MANAGER_USER)
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f'#corrections-table tr[data-key="{correction_id}"]')
        )
        row = driver.find_element(By.CSS_SELECTOR, f'#corrections-table tr[data-key="{correction_id}"]')
        assert "1.5 h" in row.text and "Prep ran 30 minutes shorter" in row.text
        driver.find_element(By.CSS_SELECTOR, f'[data-decide="approve"][data-correction="{correction_id}"]').click()
        decided = text_when(driver, "correction-status", f"Correction {correction_id}:")
        assert decided.startswith(f"Correction {correction_id}: approved"), decided
        WebDriverWait(driver, 30).until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, f'#corrections-table tr[data-key="{correction_id}"]')
        )


def test_time_logged_offline_waits_in_the_browser_and_is_sent_once_back_online(
    stack: RunningStack, ada: httpx.Client
) -> None:
    day = a_day_of_its_own().isoformat()
    notes = "On the train " + uuid.uuid4().hex[:6]
    with headless_chromium() as driver:
        open_page(driver, stack, "/time/", CONSULTANT_USER)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-week"))
        driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
        log_on_the_page(driver, day, 45, notes)
        assert text_when(driver, "log-status", "offline") == f"You are offline: 0:45 on {day} waits in this browser."
        assert driver.find_element(By.ID, "outbox-status").text.startswith("1 entry waits in this browser")
        screenshot(driver, "time-offline")

        driver.set_network_conditions(offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
        assert text_when(driver, "log-status", "sent") == "1 waiting entry sent."
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-outbox") == "0"

    week = ok(ada.get(f"{MOBILE}/me/weeks/{week_of_text(day)}"))
    assert [(e["minutes"], e["state"]) for e in week["entries"] if e["notes"] == notes] == [(45, "draft")]


@pytest.mark.parametrize(("page", "username"), [("/time/", FINANCE_LEAD_USER), ("/approvals/", CONSULTANT_USER)])
def test_a_person_without_the_role_is_refused_and_told_why(stack: RunningStack, page: str, username: str) -> None:
    with headless_chromium() as driver:
        open_page(driver, stack, page, username)
        status = driver.find_element(By.ID, "sign-in-status").text
        assert status.startswith(f"Sign-in failed. access_denied: {username} has no role that grants"), status
        assert not driver.find_element(By.ID, "workspace").is_displayed()


@pytest.mark.parametrize(
    ("page", "client_id", "scripts"),
    [
        ("/time/", "time-web", ("time.js", "pages.js", "signin.js")),
        ("/approvals/", "approvals-web", ("approvals.js", "pages.js", "signin.js")),
    ],
)
def test_the_pages_need_no_token_hold_no_secret_and_lock_themselves_down(
    stack: RunningStack, page: str, client_id: str, scripts: tuple[str, ...]
) -> None:
    base = stack.stack.url("experience") + page
    answer = httpx.get(base)
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/html; charset=utf-8"
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and stack.url in csp and "frame-ancestors 'none'" in csp
    assert f'<meta name="client-id" content="{client_id}">' in answer.text
    for name in scripts:
        script = httpx.get(f"{base}assets/{name}")
        assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert not any(s in script.text for s in ("client_secret", "demo-secret", 'sessionStorage.setItem("token'))
    assert httpx.get(f"{base}assets/pages.css").headers["content-type"] == "text/css; charset=utf-8"
    unknown = httpx.get(f"{base}assets/..%2F..%2F__init__.py")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
