"""/docs on a host without internet, in headless Chromium: the page renders from the API's own assets, the
Authorize button takes the bearer token, and "Try it out" on a list endpoint answers 200.

Every host but 127.0.0.1 is unresolvable for the browser (--host-resolver-rules), so a CDN asset would leave
the page blank. Debian's chromium and chromium-driver are installed when missing (root); the test skips
only when they cannot be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_alone import api_alone

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "docs-offline-token"
LIST_PATH = "/api/v2/integration-connections"
SCREENSHOT = os.environ.get("DOCS_SCREENSHOT", "")  # where to keep the page's picture, when set
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium() -> tuple[str, str]:
    """(chromium, chromedriver), installing Debian's packages once when missing; skip if impossible."""
    def found() -> tuple[str, str] | None:
        browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
        return (browser, driver) if browser and driver else None

    if found() is None and shutil.which("apt-get") and os.geteuid() == 0:
        for args in (["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
                     ["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium",
                                                    "chromium-driver"]):
            subprocess.run(args, capture_output=True, timeout=600,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False)
            if found():
                break
    paths = found()
    if paths is None:
        pytest.skip("chromium and chromium-driver are not installed and could not be")
    return paths


@pytest.fixture()
def api_url(tmp_path: Path) -> Iterator[str]:
    """uvicorn alone on a loopback port with its own database and Redis database."""
    with api_alone(tmp_path, API_TOKEN=TOKEN, SECRET_KEY="docs-key") as (url, _):
        yield url


@pytest.mark.slow
def test_docs_offline_authorize_and_try_it_out(api_url: str, tmp_path: Path) -> None:
    browser_path, driver_path = chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800", OFFLINE, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(f"{api_url}/docs")
        title = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info .title")))
        assert "automation-worker" in title.text
        # Every resource the page loaded came from the API itself.
        origins = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert origins and all(o.startswith(api_url) for o in origins), origins

        driver.find_element(By.CSS_SELECTOR, ".scheme-container button.authorize").click()
        modal = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))
        bearer = next(c for c in modal.find_elements(By.CSS_SELECTOR, ".auth-container")
                      if "bearerToken" in c.text)
        bearer.find_element(By.CSS_SELECTOR, "input").send_keys(TOKEN)
        bearer.find_element(By.CSS_SELECTOR, "button.authorize").click()
        wait.until(lambda d: "Logout" in bearer.text)
        modal.find_element(By.CSS_SELECTOR, "button.close-modal").click()

        summary = wait.until(ec.element_to_be_clickable(
            (By.CSS_SELECTOR, f".opblock-get .opblock-summary-path[data-path='{LIST_PATH}']")))
        block = summary.find_element(By.XPATH, "./ancestor::div[contains(@class,'opblock-get')][1]")
        summary.click()
        wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, "button.try-out__btn"))
        block.find_element(By.CSS_SELECTOR, "button.try-out__btn").click()
        wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, "button.execute"))
        block.find_element(By.CSS_SELECTOR, "button.execute").click()
        status = wait.until(lambda d: block.find_elements(
            By.CSS_SELECTOR, ".live-responses-table tr.response td.response-col_status"))
        assert status[0].text.strip() == "200", block.text[:2000]
        curl = block.find_element(By.CSS_SELECTOR, ".curl-command").text
        assert f"Authorization: Bearer {TOKEN}" in curl
        if SCREENSHOT:
            driver.execute_script("arguments[0].scrollIntoView()", block)
            driver.save_screenshot(SCREENSHOT)
    finally:
        driver.quit()


def test_docs_pages_reference_only_the_apis_own_assets() -> None:
    """Without a browser: /docs and /redoc name no outside host, and their assets are served."""
    from fastapi.testclient import TestClient

    from api.main import app

    client = TestClient(app)  # no lifespan: the pages need neither database nor Redis
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn" not in html.lower() and "https://" not in html, html
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["bearerToken"] == {"type": "http", "scheme": "bearer", "description": schemes[
        "bearerToken"]["description"]}
