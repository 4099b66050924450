"""The Dockerfile: hadolint-clean, its entry point and port the exporter's, its build context
what the package build reads, and a HEALTHCHECK that really probes.

The base images' tags and the non-root user are hadolint's (the user is also the chart's
`runAsUser`: tests/test_helm_chart.py), the version is scripts/check_version.py's
(tests/test_release_version.py); no Docker engine runs here, so the image is not built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest

from exporter.config import DEFAULT_PORT
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


class Instruction(NamedTuple):
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions (comments dropped, `\\` continuations joined)."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Group instructions by build stage (each starts with FROM)."""
    grouped: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(instruction)
    return grouped


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    """The parsed Dockerfile."""
    return parse(DOCKERFILE.read_text())


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    """The instructions of the image that ships."""
    return stages(instructions)[-1]


def values_of(stage: list[Instruction], keyword: str) -> list[str]:
    """Arguments of every `keyword` instruction in a stage."""
    return [i.args for i in stage if i.keyword == keyword]


def test_hadolint_is_clean_at_warning_level() -> None:
    hadolint = require_tool("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    # Proves the lint above can fail: an unpinned base and a root user are warnings.
    hadolint = require_tool("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_the_image_runs_the_cli_on_the_exporters_port(instructions: list[Instruction]) -> None:
    stage = final_stage(instructions)
    assert [int(port) for port in " ".join(values_of(stage, "EXPOSE")).split()] == [DEFAULT_PORT]
    entrypoint = json.loads(values_of(stage, "ENTRYPOINT")[-1])
    assert entrypoint[0] in PYPROJECT["project"]["scripts"]
    command = json.loads(values_of(stage, "CMD")[-1])
    done = subprocess.run(
        [sys.executable, "-m", "exporter", *entrypoint[1:], *command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_the_build_context_holds_every_file_the_package_build_reads() -> None:
    """.dockerignore is an allow-list (`*`, then `!name`): what it lets in must cover the files
    pyproject.toml names for the build, and nothing else of the checkout."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    project = PYPROJECT["project"]
    packages = {
        name.rstrip("*") for name in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    needed = {"pyproject.toml", "setup.py", project["readme"], *project["license-files"], *packages}
    assert allowed == needed


class _HealthServer(ThreadingHTTPServer):
    """A loopback server whose /healthz answers with `health_status`."""

    health_status = 200


class _Health(BaseHTTPRequestHandler):
    """Answers /healthz with the status the server was told to give."""

    server: _HealthServer

    def do_GET(self) -> None:
        status = self.server.health_status if self.path == "/healthz" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def health_server() -> Iterator[_HealthServer]:
    """A loopback HTTP server standing in for the exporter's /healthz."""
    server = _HealthServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_healthcheck(instructions: list[Instruction], listen: str) -> int:
    """Run the image's HEALTHCHECK command with this interpreter; return its exit code."""
    healthcheck = values_of(final_stage(instructions), "HEALTHCHECK")[-1]
    command = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :])
    assert command[0] == "python", "slim has python but no curl"
    env = {**os.environ, "REQUENCE_EXPORTER_LISTEN": listen}
    return subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, check=False, timeout=30
    ).returncode


def test_healthcheck_passes_on_a_healthy_exporter(
    instructions: list[Instruction], health_server: _HealthServer
) -> None:
    port = health_server.server_address[1]
    # The exporter listens on all interfaces by default; the probe must go to loopback.
    assert run_healthcheck(instructions, f"0.0.0.0:{port}") == 0
    assert run_healthcheck(instructions, f"127.0.0.1:{port}") == 0


def test_healthcheck_fails_on_an_unhealthy_exporter(
    instructions: list[Instruction], health_server: _HealthServer
) -> None:
    health_server.health_status = 503
    port = health_server.server_address[1]
    assert run_healthcheck(instructions, f"0.0.0.0:{port}") != 0
