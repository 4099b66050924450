"""Every shell command in README.md and docs/*.md runs, so none can go stale.

Each fenced block tagged `sh` is one bash script (`set -euo pipefail`), run in document order in
a copy of the checkout whose `.venv` is the venv running these tests, with that venv's `bin`
first on PATH (as if activated), `REQUENCE_ACCESS_TOKEN` set for a simulated account served on
loopback, and `REQUENCE_EXPORTER_LISTEN` and `LISTEN` set to `127.0.0.1:0` so every server the
commands start takes a free loopback port. A block must exit 0 within two minutes, unless the
HTML comment on the line before its fence says otherwise (CONTRIBUTING.md documents these):

    <!-- doc-test: until "TEXT" -->   a server: passes once TEXT is in its output, then stopped
    <!-- doc-test: needs docker -->   also `needs kubernetes`, `needs a release`: not run here,
                                      only checked by `bash -n`
    <!-- doc-test: ci -->             what CI runs: each line must be a line of .ci/run
    <!-- doc-test: file NAME -->      on any block: written to NAME in the copy before any runs

Every fence names its language, and shell commands are `sh` (never bash, shell or console), so
no command escapes the test by its tag.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporter.simulator.server import WatchAllSimulator
from tests.e2e.servers import LoopThread, serve

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(`{3,})(.*)$")
MARKER = re.compile(r"^<!-- doc-test: (.*) -->$")
NEEDS = {"docker", "kubernetes", "a release"}
SHELL_TAGS = {"bash", "shell", "console", "zsh", "shell-session", "shellsession"}
RUN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text and its marker's settings."""

    path: Path
    line: int
    lang: str
    text: str
    marks: dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_marks(text: str) -> dict[str, str]:
    """`until "TEXT"; file NAME` -> {"until": "TEXT", "file": "NAME"}."""
    marks: dict[str, str] = {}
    for part in text.split(";"):
        key, _, value = part.strip().partition(" ")
        marks[key] = value.strip().strip('"')
    return marks


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        ticks, lang = opening.group(1), opening.group(2).strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == ticks), len(lines))
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        marks = parse_marks(marker.group(1)) if marker else {}
        found.append(Block(path, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n", marks))
        i = end + 1
    return found


ALL = [b for path in DOCS for b in blocks(path)]
COMMANDS = [b for b in ALL if b.lang == "sh"]


def test_every_fence_names_its_language_and_markers_are_known() -> None:
    assert COMMANDS, "no sh blocks found"
    for block in ALL:
        assert block.lang, f"{block.name}: a fence without a language (sh, text, yaml, ...)"
        assert block.lang not in SHELL_TAGS, f"{block.name}: shell commands are tagged sh"
        assert set(block.marks) <= {"until", "needs", "ci", "file"}, block.name
        if "needs" in block.marks:
            assert block.marks["needs"] in NEEDS, f"{block.name}: needs one of {NEEDS}"
        if block.lang != "sh":
            assert set(block.marks) <= {"file"}, f"{block.name}: only sh blocks are run"
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if "doc-test" in line:
                assert MARKER.match(line), f"{path.name}:{number}: not a doc-test marker: {line}"
                following = lines[number] if number < len(lines) else ""
                assert FENCE.match(following), f"{path.name}:{number}: a marker precedes a fence"
    names = [b.marks["file"] for b in ALL if "file" in b.marks]
    assert len(names) == len(set(names)), f"one file name per block: {names}"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout (times kept, so make sees the venv's installs as current)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the commands need the project's venv: run the tests with .venv/bin/python")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("needs a git checkout to copy")
    # The copy's `.venv` is this venv: were its install older than the sources, the commands'
    # `make demo` would reinstall into it from the copy, leaving its scripts pointing there.
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        stale = subprocess.run(
            ["make", "-q", ".venv/.installed-run"], cwd=ROOT, capture_output=True, check=False
        )
        if stale.returncode == 1:
            pytest.fail("the venv's install is older than the sources: run `make check` first")
    copy = tmp_path_factory.mktemp("checkout")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    for block in ALL:
        if "file" in block.marks:
            (copy / block.marks["file"]).write_text(block.text)
    return copy


@pytest.fixture(scope="module")
def account() -> Iterator[str]:
    """A simulated Requence account on loopback: its access token."""
    with LoopThread() as loop:
        simulator = serve(loop, lambda: WatchAllSimulator(bearer="doc-commands", rate=100.0))
        assert isinstance(simulator, WatchAllSimulator)
        try:
            yield simulator.access_token
        finally:
            loop.run(simulator.aclose())


def environment(checkout: Path, token: str) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REQUENCE_", "OTEL_", "PYTHON")) and k not in {"VIRTUAL_ENV"}
    }
    return {
        **inherited,
        "PATH": f"{checkout / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(checkout / ".venv"),
        "REQUENCE_ACCESS_TOKEN": token,
        "REQUENCE_EXPORTER_LISTEN": "127.0.0.1:0",
        "LISTEN": "127.0.0.1:0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


class Script:
    """One block run by bash in its own process group, its output collected."""

    def __init__(self, block: Block, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + block.text],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        self.output.extend(self.proc.stdout)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def wait_for(self, wanted: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if wanted in self.text:
                return True
            if self.proc.poll() is not None:
                self._reader.join(5)
                return wanted in self.text
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """SIGTERM to the whole group (make, its shell and the server), then SIGKILL."""
        for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("block", COMMANDS, ids=[b.name for b in COMMANDS])
def test_the_command_runs(block: Block, checkout: Path, account: str) -> None:
    if "needs" in block.marks:
        # No Docker engine, cluster or published release here: the script must still parse.
        done = subprocess.run(
            ["bash", "-n"], input=block.text, text=True, capture_output=True, check=False
        )
        assert done.returncode == 0, f"{block.name}: {done.stderr}"
        return
    if "ci" in block.marks:
        ci = {line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()}
        for line in block.text.splitlines():
            command = line.split("#", 1)[0].strip()
            assert not command or command in ci, f"{block.name}: {command!r} is not in .ci/run"
        return
    script = Script(block, checkout, environment(checkout, account))
    try:
        if "until" in block.marks:
            wanted = block.marks["until"]
            seen = script.wait_for(wanted, RUN_TIMEOUT)
            assert seen, f"{block.name}: no {wanted!r} in the output:\n{script.text}"
        else:
            try:
                code = script.proc.wait(RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                code = None
            assert code == 0, f"{block.name} exited {code}:\n{script.text}"
    finally:
        script.stop()
