"""The finance dashboard page in a real (headless) browser: sign in, figures from the API, and a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from gateway.launcher import REPO_ROOT, Ports, Stack
from tests.browser import headless_chromium
from tests.conftest import RunningStack


@pytest.fixture(scope="module")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """Its own stack: the page's origin is the experience tier, allowed by the gateway's CORS policy, and this
    module stops the process tier, which must not disturb the shared stack."""
    ports = Ports.free()
    data_dir: Path = tmp_path_factory.mktemp("psgw-page")
    stack = Stack(data_dir=data_dir, ports=ports, config_file=REPO_ROOT / "gateway.yaml",
                  extra_env={"PSGW_CORS_ORIGINS": f'["http://127.0.0.1:{ports.experience}"]'})
    stack.start()
    try:
        stack.wait_ready(timeout=90)
        yield RunningStack(stack)
    finally:
        stack.stop()


def sign_in(driver: WebDriver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "period").get_attribute("value"))
    driver.find_element(By.ID, "sign-in-button").click()


def panel_state(driver: WebDriver, name: str) -> str | None:
    return driver.find_element(By.CSS_SELECTOR, f'[data-panel="{name}"]').get_attribute("data-state")


def test_finance_lead_sees_the_figures_the_api_gives(page_stack: RunningStack) -> None:
    url = page_stack.stack.url("experience") + "/dashboards/"
    with page_stack.client("dashboard-web") as api, headless_chromium() as driver:
        sign_in(driver, url)
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))

        assert {panel_state(driver, p) for p in ("utilization", "aging", "backlog", "exceptions", "margins")} == {
            "loaded"}
        backlog = api.get("/experience/dashboards/v1/invoice-ready-backlog").json()["projects"][0]
        row = driver.find_element(By.CSS_SELECTOR, f'[data-table="backlog"] tr[data-key="{backlog["project_id"]}"]')
        assert row.find_element(By.TAG_NAME, "th").text == backlog["project_name"]
        values = [c.get_attribute("data-value") for c in row.find_elements(By.TAG_NAME, "td")]
        assert values[:4] == [backlog["posted_hours"], backlog["posted_amount"], backlog["milestone_amount"],
                              backlog["total_amount"]]

        margins = api.get("/experience/dashboards/v1/project-margins").json()["projects"]
        nearest = margins[0]
        burn = driver.find_element(By.CSS_SELECTOR, f'[data-table="margins"] tr[data-key="{nearest["project_id"]}"]')
        assert burn.find_elements(By.TAG_NAME, "td")[-1].get_attribute("data-value") == nearest["nte_burn_pct"]

        exceptions = api.get("/experience/dashboards/v1/exceptions-summary").json()
        assert driver.find_element(By.CSS_SELECTOR, '[data-figure="exceptions-open"]').text == str(
            exceptions["open_total"])
        aging = api.get("/experience/dashboards/v1/unbilled-time-aging").json()["buckets"]
        shown = {r.get_attribute("data-key"): r.find_elements(By.TAG_NAME, "td")[1].get_attribute("data-value")
                 for r in driver.find_elements(By.CSS_SELECTOR, '[data-table="aging"] tbody tr')}
        assert shown == {b["bucket"]: b["hours"] for b in aging}
        assert driver.find_element(By.CSS_SELECTOR, '[data-chart="aging"] svg[role="img"]')
        # Accessible structure: labelled controls and real table headers.
        assert driver.find_element(By.CSS_SELECTOR, 'label[for="period"]')
        assert driver.find_elements(By.CSS_SELECTOR, '[data-table="margins"] thead th[scope="col"]')


def test_page_and_demo_login_need_no_token_but_the_data_does(page_stack: RunningStack) -> None:
    base = page_stack.stack.url("experience")
    page = httpx.get(base + "/dashboards/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    session = httpx.post(base + "/dashboards/sessions")
    assert session.status_code == 201, session.text
    assert session.json()["api_base_url"] == page_stack.url
    data = httpx.get(page_stack.url + "/experience/dashboards/v1/exceptions-summary")
    assert data.status_code == 401
    with_token = httpx.get(page_stack.url + "/experience/dashboards/v1/exceptions-summary",
                           headers={"Authorization": "Bearer " + session.json()["access_token"]})
    assert with_token.status_code == 200


def test_the_page_shows_an_error_when_the_process_tier_is_down(page_stack: RunningStack) -> None:
    url = page_stack.stack.url("experience") + "/dashboards/"
    page_stack.stack.stop("process")
    try:
        with headless_chromium() as driver:
            sign_in(driver, url)
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))

            assert panel_state(driver, "backlog") == "error"
            alert = driver.find_element(By.CSS_SELECTOR, '[data-panel="backlog"] .panel-status')
            assert alert.get_attribute("role") == "alert"
            assert alert.text.startswith("Could not load this panel:")
            assert "unavailable" in alert.text
            assert not driver.find_element(By.CSS_SELECTOR, '[data-panel="backlog"] .panel-body').is_displayed()
    finally:
        page_stack.stack.start(only=["process"])
        page_stack.stack.wait_ready(only=["process"])
