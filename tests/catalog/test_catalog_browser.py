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
    return [row.get_attribute("data-api") for row in driver.find_elements(By.CSS_SELECTOR, "tr.api")
            if row.is_displayed()]


def test_search_finds_an_api(stack: RunningStack) -> None:
    with headless_chromium() as driver:
        driver.get(f"{stack.url}/catalog")
        assert "system/psa" in visible_apis(driver)

        driver.find_element(By.ID, "search").send_keys("staffing")

        WebDriverWait(driver, 10).until(lambda d: visible_apis(d) == ["process/staffing"])
        driver.find_element(By.CSS_SELECTOR, 'tr[data-api="process/staffing"] a.api-link').click()
        WebDriverWait(driver, 10).until(ec.text_to_be_present_in_element((By.ID, "base-path"),
                                                                         "/process/staffing/v1"))


def test_version_switcher_moves_between_major_versions(stack: RunningStack) -> None:
    apis = httpx.get(f"{stack.url}/catalog/apis").json()["items"]
    versioned = next(api for api in apis if len(api["versions"]) > 1)  # the platform must show real versioning
    first, second = versioned["versions"][0]["major"], versioned["versions"][1]["major"]
    with headless_chromium() as driver:
        driver.get(f"{stack.url}/catalog/apis/{versioned['api_id']}/v{first}")
        assert driver.find_element(By.ID, "base-path").text.endswith(f"/v{first}")

        Select(driver.find_element(By.ID, "version-switcher")).select_by_value(
            f"/catalog/apis/{versioned['api_id']}/v{second}")

        WebDriverWait(driver, 10).until(ec.text_to_be_present_in_element((By.ID, "base-path"), f"/v{second}"))
        assert driver.current_url.endswith(f"/v{second}")


@pytest.fixture(scope="module")
def demo_gateway(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway with try-it in the embedded demo's mode (it is off on the default stack)."""
    gateway = GatewayProcess(stack, tmp_path_factory.mktemp("demo"), base_config(),
                             env={"PSGW_TRY_IT_ENABLED": "true", "PSGW_TRY_IT_MODE": "demo"}).start()
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
