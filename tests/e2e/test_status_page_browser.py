"""The status page in a real headless Chromium: the running demo, trace links, hostile input.

1. `requence-exporter demo` runs with `--trace-url-template` pointing at a small trace server
   on loopback; Chromium loads `/` as a phone (390 and 360 px wide) and as a desktop (1280 px):
   the failures table is filled and nothing scrolls the page sideways. It keeps a screenshot of
   each in the test's temporary directory (and in $REQUENCE_EXPORTER_SCREENSHOTS when set),
   clicks a trace link and lands on that failure's trace.
2. The real exporter reads a stream whose task names and errors hold `<script>` and
   `"><img src=x onerror=...>`; in Chromium they show as text and nothing of theirs runs.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from exporter.requence.token import encode_token
from exporter.simulator.scripted import ScriptedServer
from tests.browser import CSS, browser, emulate, screenshot
from tests.e2e.hostile_failures import BEARER, HOSTILE_NAME, script
from tests.e2e.process import ROOT, ExporterProcess
from tests.e2e.servers import LoopThread, serve
from tests.helpers import free_port, wait_until
from tests.hostile_html import IMG, SCRIPT

pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


class _TraceHandler(http.server.BaseHTTPRequestHandler):
    paths: list[str]

    def do_GET(self) -> None:
        self.paths.append(self.path)
        body = f"<!doctype html><title>trace</title><p id='trace'>{self.path}</p>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        """Quiet."""


@pytest.fixture
def trace_server() -> Iterator[tuple[str, list[str]]]:
    """A stand-in trace UI on loopback: its URL template and the paths it was asked for."""
    paths: list[str] = []
    handler = type("Handler", (_TraceHandler,), {"paths": paths})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/trace/{{trace_id}}", paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


PHONES = ((390, 844, "status-page-phone.png"), (360, 740, "status-page-360.png"))
# Set to a directory (docs/) to keep the screenshots there too: how docs/status-page*.png are made.
SCREENSHOTS = os.environ.get("REQUENCE_EXPORTER_SCREENSHOTS")


def keep_screenshot(
    chrome: WebDriver, tmp_path: Path, name: str, *, full_page: bool = False
) -> None:
    shot = screenshot(chrome, tmp_path / name, full_page=full_page)
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(shot) > 10_000
    if SCREENSHOTS and name in {"status-page.png", "status-page-phone.png"}:
        (Path(SCREENSHOTS) / name).write_bytes(shot)


def fits_without_sideways_scrolling(chrome: WebDriver, width: int) -> None:
    """Rows shown; the page is no wider than the screen; a wider table scrolls in its own box."""
    assert chrome.find_elements(CSS, "#failures tr.failure"), "the failures table is empty"
    page = chrome.execute_script(
        "const box = document.querySelector('#failures').parentElement;"
        "const reason = document.querySelector('#failures td.reason');"
        "return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
        " box: box.clientWidth, overflow: getComputedStyle(box).overflowX,"
        " reason: reason.getBoundingClientRect().width,"
        " em: parseFloat(getComputedStyle(reason).fontSize)};"
    )
    assert page["inner"] == width, page
    assert page["scroll"] <= page["inner"], f"the page scrolls sideways at {width} px: {page}"
    assert page["box"] <= page["inner"], page
    assert page["overflow"] == "auto", page
    # Room for words in the reason column: no breaking a reason a few letters to a line.
    assert page["reason"] >= 12 * page["em"], page


def test_demo_status_page_in_chromium(tmp_path: Path, trace_server: tuple[str, list[str]]) -> None:
    template, paths = trace_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--listen",
            f"127.0.0.1:{port}",
            "--rate",
            "300",
            "--summary-every",
            "60",
            "--trace-url-template",
            template,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with browser(tmp_path / "profile") as chrome:

            def failures() -> list[dict[str, object]]:
                try:
                    found = httpx.get(f"{base}/failures", timeout=2).json()["failures"]
                except httpx.HTTPError:
                    return []
                return list(found)

            # Screenshots for the docs wait for a fuller page: the last minute's figures too.
            wanted = 8 if SCREENSHOTS else 3
            wait_until(lambda: len(failures()) >= wanted, what="failures in the demo", timeout=90)
            # A phone first (390 x 844, the narrowest supported 360 px too), then a desktop.
            for width, height, name in PHONES:
                emulate(chrome, width, height, scale=2, mobile=True)
                chrome.get(f"{base}/")
                fits_without_sideways_scrolling(chrome, width)
                keep_screenshot(chrome, tmp_path, name, full_page=True)
            emulate(chrome, 1280, 1000)
            chrome.get(f"{base}/")
            fits_without_sideways_scrolling(chrome, 1280)
            cells = chrome.find_elements(CSS, "#failures tr.failure td")
            assert any(c.text in {"taskError", "taskAborted", "nodeError"} for c in cells)
            assert "connected" in chrome.find_element(CSS, ".card b").text
            keep_screenshot(chrome, tmp_path, "status-page.png")
            links = chrome.find_elements(CSS, "#failures a.trace")
            assert links
            trace_id = links[0].text
            assert len(trace_id) == 32
            assert trace_id in {f["trace_id"] for f in failures()}
            href = links[0].get_dom_attribute("href")
            assert href == template.replace("{trace_id}", trace_id)
            links[0].click()
            wait_until(lambda: chrome.current_url == href, what="the trace page")
            assert [p for p in paths if p != "/favicon.ico"] == [f"/trace/{trace_id}"]
            assert chrome.find_element(CSS, "#trace").text == f"/trace/{trace_id}"
    finally:
        demo.terminate()
        try:
            assert demo.wait(20) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait(5)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def test_hostile_stream_values_show_as_text_and_nothing_runs(
    loop: LoopThread, tmp_path: Path
) -> None:
    events = script()
    server = serve(loop, lambda: ScriptedServer(events, bearer=BEARER))
    assert isinstance(server, ScriptedServer)
    env = {"REQUENCE_ACCESS_TOKEN": encode_token(BEARER, server.base_url)}
    args = ["--trace-url-template", "http://127.0.0.1:9/{trace_id}"]
    try:
        with (
            ExporterProcess(args, env) as exporter,
            browser(tmp_path / "profile") as chrome,
        ):
            exporter.wait_for(
                lambda: len(exporter.get("/failures").json()["failures"]) == 4,
                what="four failures",
            )
            chrome.get(exporter.url + "/")
            screenshot(chrome, tmp_path / "hostile.png")
            texts = [c.text for c in chrome.find_elements(CSS, "#failures td")]
            assert HOSTILE_NAME in texts
            assert any(SCRIPT in t and IMG in t for t in texts)
            assert chrome.find_elements(CSS, "#failures img, #failures script, img, script") == []
            assert chrome.execute_script("return typeof window.pwned") == "undefined"
            assert chrome.execute_script("return document.title") == "requence-exporter"
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
