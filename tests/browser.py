"""A real headless Chromium driven by Selenium through Debian's `chromedriver`.

`browser(profile)` starts a Chromium session with a fresh profile and stops it and its driver
afterwards. Skips (fails under CI=true) when `chromium` or `chromedriver` is missing; Selenium
is imported only then, so a build without a browser needs neither.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tests.tools import require_tool

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

# The flags the project's browser tests run Chromium with: headless, no sandbox (containers),
# and nothing that reaches out to the network on its own.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)
# selenium.webdriver.common.by.By.CSS_SELECTOR, without importing Selenium where it is not used.
CSS = "css selector"


@contextlib.contextmanager
def browser(profile: Path) -> Iterator[WebDriver]:
    """A headless Chromium session with a fresh profile directory under `profile`."""
    chromium = require_tool("chromium")
    driver = require_tool("chromedriver")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    # Both paths given: Selenium Manager (which would download a browser) is never asked.
    options.binary_location = chromium
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    profile.mkdir(parents=True, exist_ok=True)
    chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def emulate(
    chrome: WebDriver, width: int, height: int, *, scale: float = 1, mobile: bool = False
) -> None:
    """Show pages in a viewport of this size, as a phone does with `mobile` (Chromium's own
    device emulation); reload to lay a page out anew."""
    params = {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile}
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", params)


def screenshot(chrome: WebDriver, path: Path, *, full_page: bool = False) -> bytes:
    """Save a PNG screenshot of the viewport (or the whole page) to `path` and return it."""
    if full_page:
        shot = chrome.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True})
        data = base64.b64decode(shot["data"])
    else:
        data = chrome.get_screenshot_as_png()
    path.write_bytes(data)
    return data
