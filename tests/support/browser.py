"""The browser tests' chromium and server: fixtures ``browser`` (one headless chromium a
module) and ``site`` (the test home's app on 127.0.0.1), and the helpers they share.
Importing this module skips the importing test module when chromium is missing."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from localtailr.web import security, server

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-results" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 60

webdriver = pytest.importorskip("selenium.webdriver")
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("chromium and chromedriver are missing (make system-packages installs them)",
                allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="localtailr-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def site(localtailr_home, browser):
    """The app of the test's home served on 127.0.0.1; yields its base URL (signed in)."""
    home = localtailr_home.home
    srv = server.serve(home)
    server.start_in_thread(srv)
    base = server.url(srv, home, with_token=False).rstrip("/")
    browser.delete_all_cookies()
    yield base
    srv.shutdown()
    srv.server_close()


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait(driver, condition, what: str):
    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: condition(d), message=what)


def no_alert(driver) -> bool:
    try:
        _ = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def sign_in(driver, base: str, home) -> None:
    driver.get(f"{base}/?token={security.token(home)}")
    assert "token=" not in driver.current_url  # dropped after setting the cookie
    assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"


