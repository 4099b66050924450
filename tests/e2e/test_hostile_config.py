"""Malformed credentials are refused at start, naming the setting, without quoting them.

A password in the API URL, and tokens, OTLP headers or basic auth user names that could not go
into an HTTP header as they are (line breaks, control and non-ASCII characters).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


TOKEN_SECRET = "TOKENPART-5ecret-9d0e"


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def _cases(tmp_path: Path) -> list[tuple[str, list[str], dict[str, str], str]]:
    """(what, args, env, the setting the message must name)."""
    url = "http://127.0.0.1:9"
    good = encode_token(TOKEN_SECRET, url)
    return [
        ("token file of two lines",
         ["--access-token-file", _file(tmp_path, "two", f"{good}\n{good}\n")], {},
         "--access-token-file"),
        ("bearer file with a CR",
         ["--api-url", url, "--bearer-token-file", _file(tmp_path, "cr", f"{TOKEN_SECRET}\rx")],
         {}, "--bearer-token-file"),
        ("access token whose bearer holds a line feed", [],
         {"REQUENCE_ACCESS_TOKEN": encode_token(f"{TOKEN_SECRET}\nX-Injected: 1", url)},
         "REQUENCE_ACCESS_TOKEN"),
        ("non-ASCII bearer token",
         ["--api-url", url, "--bearer-token", f"{TOKEN_SECRET}\u00e9"], {}, "--bearer-token"),
        ("task token with a space", [],
         {"REQUENCE_TASK_ACCESS_TOKEN": encode_token(f"{TOKEN_SECRET} x", url)},
         "REQUENCE_TASK_ACCESS_TOKEN"),
        ("OTLP header with a line feed",
         ["--api-url", url, "--bearer-token", "b"],
         {"OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {TOKEN_SECRET}%0Ax"},
         "OTEL_EXPORTER_OTLP_HEADERS"),
        ("non-ASCII OTLP metrics header",
         ["--api-url", url, "--bearer-token", "b", "--otlp-metrics"],
         {"OTEL_EXPORTER_OTLP_METRICS_HEADERS": f"api-key={TOKEN_SECRET}%C3%A9"},
         "OTEL_EXPORTER_OTLP_METRICS_HEADERS"),
        ("basic auth user name with a line feed",
         ["--api-url", url, "--bearer-token", "b", "--web.config.file",
          _file(tmp_path, "web.yml", f'basic_auth_users:\n  "{TOKEN_SECRET}\\nx": "$2b$04$'
                + "a" * 53 + '"\n')],
         {}, "basic_auth_users"),
    ]  # fmt: skip


@pytest.mark.slow
def test_malformed_secrets_exit_2_naming_the_setting_without_quoting_them(
    tmp_path: Path,
) -> None:
    for what, args, env, setting in _cases(tmp_path):
        done = _run(args, env)
        output = done.stdout + done.stderr
        assert done.returncode == 2, f"{what}: {output}"
        assert setting in output, f"{what}: {output}"
        assert "Traceback" not in output, f"{what}: {output}"
        assert TOKEN_SECRET not in output, f"{what}: {output}"
