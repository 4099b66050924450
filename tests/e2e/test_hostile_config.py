"""Credentials in an API URL are refused before any request, without quoting them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from exporter.requence.token import encode_token
from exporter.simulator.scripted import ScriptedServer
from tests.e2e.process import ROOT
from tests.e2e.scripts import SCRIPT
from tests.e2e.servers import LoopThread, serve

PASSWORD = "URLPASS-5ecret-41c9"


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "run", "--listen", "127.0.0.1:0", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("where", ["--api-url", "the access token"])
def test_a_password_in_the_api_url_is_refused_without_a_request(
    loop: LoopThread, where: str
) -> None:
    server = serve(loop, lambda: ScriptedServer(SCRIPT, bearer="b"))
    assert isinstance(server, ScriptedServer)
    url = server.base_url.replace("http://", f"http://scraper:{PASSWORD}@")
    try:
        if where == "--api-url":
            done = _run(["--api-url", url], {"REQUENCE_EXPORTER_BEARER_TOKEN": "b"})
        else:
            done = _run([], {"REQUENCE_ACCESS_TOKEN": encode_token("b", url)})
    finally:
        loop.run(server.aclose())
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "carries a user name or password" in output
    assert PASSWORD not in output
    assert "bearer token (HTTP" not in output  # not blamed on the bearer token
    assert server.requests == []
    assert "Traceback" not in output
