"""The catalog in a real browser (headless Chromium): search, the version switcher and the try-it console."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import headless_chromium
from tests.support.gateway import GatewayProcess, base_config
from tests.support.stack import RunningStack


def visible_apis(driver) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        row.get_attribute("data-api") for row in driver.find_elements(By.CSS_SELECTOR, "tr.api") if row.is_displayed()
    ]


def test_search_finds_an_api(stack: RunningStack) -> None:
    with headless_chromium() as driver:
        driver.get(f"{stack.url}/catalog")
        assert "system/psa" in visible_apis(driver)

        driver.find_element(By.ID, "search").send_keys("staffing")

        WebDriverWait(driver, 10).until(lambda d: visible_apis(d) == ["process/staffing"])
        driver.find_element(By.CSS_SELECTOR, 'tr[data-api="process/staffing"] a.api-link').click()
        WebDriverWait(driver, 10).until(ec.text_to_be_present_in_element((By.ID, "base-path"), "/process/staffing/v1"))


def test_version_switcher_moves_between_major_versions(stack: RunningStack) -> None:
    apis = httpx.get(f"{stack.url}/catalog/apis").json()["items"]
    versioned = next(api for api in apis if len(api["versions"]) > 1)  # the platform must show real versioning
    first, second = versioned["versions"][0]["major"], versioned["versions"][1]["major"]
    with headless_chromium() as driver:
        driver.get(f"{stack.url}/catalog/apis/{versioned['api_id']}/v{first}")
        assert driver.find_element(By.ID, "base-path").text.endswith(f"/v{first}")

        Select(driver.find_element(By.ID, "version-switcher")).select_by_value(
            f"/catalog/apis/{versioned['api_id']}/v{second}"
        )

        WebDriverWait(driver, 10).until(ec.text_to_be_present_in_element((By.ID, "base-path"), f"/v{second}"))
        assert driver.current_url.endswith(f"/v{second}")


@pytest.fixture(scope="module")
def demo_gateway(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway with try-it in the embedded demo's mode (it is off on the default stack)."""
    gateway = GatewayProcess(
        stack,
        tmp_path_factory.mktemp("demo"),
        base_config(),
        env={"PSGW_TRY_IT_ENABLED": "true", "PSGW_TRY_IT_MODE": "demo"},
    ).start()
    yield gateway
    gateway.stop()


def test_try_it_returns_a_real_response(demo_gateway: GatewayProcess) -> None:
    with headless_chromium() as driver:
        driver.get(f"{demo_gateway.url}/catalog/apis/experience/mobile-time/v1")
        assert driver.find_element(By.ID, "demo-banner").is_displayed()
        Select(driver.find_element(By.ID, "try-client")).select_by_value("mobile-app")
        Select(driver.find_element(By.ID, "try-operation")).select_by_visible_text("GET /me/assignments")
        path = driver.find_element(By.ID, "try-path")
        path.clear()
        path.send_keys("/experience/mobile-time/v1/me/assignments")

        driver.find_element(By.ID, "try-send").click()

        WebDriverWait(driver, 15).until(ec.text_to_be_present_in_element((By.ID, "try-status"), "200"))
        response = driver.find_element(By.ID, "try-response").text
        assert '"assignment_id"' in response
        assert driver.find_element(By.ID, "try-correlation").text.startswith("correlation id ")


def test_a_developer_reads_the_schema_and_a_sample_then_tries_the_call(demo_gateway: GatewayProcess) -> None:
    with headless_chromium() as driver:
        driver.get(f"{demo_gateway.url}/catalog/apis/experience/mobile-time/v2")
        create = driver.find_element(By.ID, "createMyTimeEntry")
        work_type = create.find_element(By.CSS_SELECTOR, 'table.schema tr[data-field="work_type"]')
        assert "required" in work_type.find_element(By.CSS_SELECTOR, "td.req").text
        assert {e.text for e in work_type.find_elements(By.CSS_SELECTOR, "code.enum")} >= {
            "billable_delivery",
            "non_billable_internal",
        }
        notes = create.find_element(By.CSS_SELECTOR, 'table.schema tr[data-field="notes"]')
        assert notes.find_element(By.CSS_SELECTOR, "td.req").text == "optional"
        curl = create.find_element(By.CSS_SELECTOR, "pre.sample-curl").text
        assert curl.startswith("curl -s -X POST ") and '"work_type": "billable_delivery"' in curl

        # Try-it: the operation's path comes filled from the contract's examples, with a client that may call it.
        Select(driver.find_element(By.ID, "try-operation")).select_by_visible_text("GET /me/weeks/{week_start}")
        path = driver.find_element(By.ID, "try-path").get_attribute("value")
        assert path is not None and path.startswith("/experience/mobile-time/v2/me/weeks/20")
        assert Select(driver.find_element(By.ID, "try-client")).first_selected_option.text == "mobile-app"
        driver.find_element(By.ID, "try-send").click()

        WebDriverWait(driver, 15).until(ec.text_to_be_present_in_element((By.ID, "try-status"), "200"))
        headers = {
            row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
            for row in driver.find_elements(By.CSS_SELECTOR, "#try-headers tr.response-header")
        }
        assert headers["content-type"].startswith("application/json")
        assert "etag" in headers and "x-correlation-id" in headers
        assert '"days"' in driver.find_element(By.ID, "try-response").text
        equivalent = driver.find_element(By.ID, "try-curl").text
        assert (
            equivalent.startswith("curl -s -i -X GET ")
            and path in equivalent
            and "Authorization: Bearer ey" in equivalent
        )

        # A body is prefilled from the request example when the operation takes one.
        Select(driver.find_element(By.ID, "try-operation")).select_by_visible_text("POST /me/time-entries")
        assert '"work_type": "billable_delivery"' in (
            driver.find_element(By.ID, "try-body").get_attribute("value") or ""
        )


def test_try_it_does_not_offer_an_app_client_for_a_process_api(demo_gateway: GatewayProcess) -> None:
    with headless_chromium() as driver:
        driver.get(f"{demo_gateway.url}/catalog/apis/process/staffing/v1")
        assert "layer rule" in driver.find_element(By.ID, "try-it-none").text
        assert not driver.find_elements(By.ID, "try-it-form")
