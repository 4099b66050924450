"""A real headless Chromium driven over WebDriver (chromedriver's HTTP API, spoken with httpx).

`browser(tmp_path)` starts Debian's `chromedriver` on a free loopback port and a Chromium
session with a fresh profile, and stops both afterwards. Skips (fails under CI=true) when
`chromium` or `chromedriver` is missing.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.tools import require_tool

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
_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """One WebDriver session."""

    def __init__(self, http: httpx.Client, session: str) -> None:
        self._http = http
        self._base = f"/session/{session}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, self._base + path, json=body)
        data = response.json()
        if response.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {data.get('value')}")
        return data["value"]

    def get(self, url: str) -> None:
        """Load `url` and wait for it (WebDriver waits for the load event)."""
        self._call("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        """The current page's URL."""
        return str(self._call("GET", "/url"))

    def find_all(self, css: str) -> list[str]:
        """Element references matching a CSS selector."""
        found = self._call("POST", "/elements", {"using": "css selector", "value": css})
        return [item[_ELEMENT] for item in found]

    def text(self, element: str) -> str:
        """An element's rendered text."""
        return str(self._call("GET", f"/element/{element}/text"))

    def attribute(self, element: str, name: str) -> str | None:
        """An element's attribute."""
        value = self._call("GET", f"/element/{element}/attribute/{name}")
        return None if value is None else str(value)

    def click(self, element: str) -> None:
        """Click an element (as a user would)."""
        self._call("POST", f"/element/{element}/click", {})

    def execute(self, script: str) -> Any:
        """Run a script in the page (the driver's own, not subject to the page's CSP)."""
        return self._call("POST", "/execute/sync", {"script": script, "args": []})

    def emulate(self, width: int, height: int, *, scale: float = 1, mobile: bool = False) -> None:
        """Show pages in a viewport of this size, as a phone does with `mobile` (Chromium's own
        device emulation, over the driver's DevTools endpoint); reload to lay a page out anew."""
        params = {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile}
        self._call(
            "POST",
            "/goog/cdp/execute",
            {"cmd": "Emulation.setDeviceMetricsOverride", "params": params},
        )

    def screenshot(self, path: Path, *, full_page: bool = False) -> bytes:
        """Save a PNG screenshot of the viewport (or the whole page) to `path` and return it."""
        if full_page:
            shot = self._call(
                "POST",
                "/goog/cdp/execute",
                {"cmd": "Page.captureScreenshot", "params": {"captureBeyondViewport": True}},
            )
            data = base64.b64decode(shot["data"])
        else:
            data = base64.b64decode(self._call("GET", "/screenshot"))
        path.write_bytes(data)
        return data

    def wait_for(self, condition: Any, *, what: str, timeout: float = 20.0) -> Any:
        """Poll `condition()` until it returns something true; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def browser(profile: Path) -> Iterator[Browser]:
    """A headless Chromium session with a fresh profile directory under `profile`."""
    chromium = require_tool("chromium")
    driver = require_tool("chromedriver")
    port = _free_port()
    proc = subprocess.Popen(
        [driver, f"--port={port}", "--allowed-ips=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60.0) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if http.get("/status").json()["value"]["ready"]:
                        break
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("chromedriver did not start")
                time.sleep(0.1)
            profile.mkdir(parents=True, exist_ok=True)
            options = {
                "binary": chromium,
                "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile}"],
            }
            created = http.post(
                "/session",
                json={"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}},
            )
            if created.status_code != 200:
                raise AssertionError(f"no Chromium session: {created.text}")
            session = created.json()["value"]["sessionId"]
            try:
                yield Browser(http, session)
            finally:
                with contextlib.suppress(httpx.HTTPError):
                    http.delete(f"/session/{session}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
