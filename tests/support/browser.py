"""Headless Chromium for page tests: Debian's chromium + chromedriver, driven by Selenium, never downloaded."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@contextmanager
def headless_chromium() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="psgw-chromium-")
    # The flags this machine needs: no sandbox as root, and no background calls to hosts it cannot reach.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def sign_in_at_the_issuer(driver: WebDriver, username: str, password: str, *, back_to: str) -> None:
    """On the issuer's sign-in page a page sent the browser to: type the person's credentials, wait to be back."""
    WebDriverWait(driver, 30).until(lambda d: "/authorize?" in d.current_url)
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in-button").click()
    WebDriverWait(driver, 30).until(lambda d: d.current_url.startswith(back_to))


def screenshot(driver: WebDriver, name: str) -> None:
    """Saves ``<name>.png`` for the README when PSGW_SCREENSHOTS names a directory (``PSGW_SCREENSHOTS=docs``)."""
    directory = os.environ.get("PSGW_SCREENSHOTS")
    if directory:
        driver.save_screenshot(str(Path(directory) / f"{name}.png"))


def sign_in_on_page(driver: WebDriver, url: str, username: str, password: str, *, shot: str | None = None) -> None:
    """Open a page, press its Sign in, sign in at the issuer as ``username`` and wait until the page has its answer
    (``data-sign-in`` on the body: ``done`` or ``failed``)."""
    driver.get(url)
    driver.find_element(By.ID, "sign-in-button").click()
    WebDriverWait(driver, 30).until(lambda d: "/authorize?" in d.current_url)
    if shot:
        screenshot(driver, shot)
    sign_in_at_the_issuer(driver, username, password, back_to=url)
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-sign-in"))


def text_when(driver: WebDriver, element_id: str, shows: str) -> str:
    """The element's text once it contains ``shows``."""
    WebDriverWait(driver, 30).until(lambda d: shows in d.find_element(By.ID, element_id).text)
    return str(driver.find_element(By.ID, element_id).text)
