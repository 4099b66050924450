"""The release rehearsed (`make release-check`): the sdist and wheels built from nothing, run.

`scripts/build-dist` builds the sdist, then both wheels from that sdist alone in a bare venv, the
compiled one with the release's cibuildwheel settings (pyproject.toml, [tool.cibuildwheel]).
Here each wheel is installed in a bare venv of its own (`python -m venv`, pip only, outside the
checkout) and run: `is_compiled()`, `demo` serving /metrics for a few seconds, `rules` printing
grafana/alerts.yml. `make test` builds once for these tests and the compiled test pass
(REQUENCE_EXPORTER_DIST); run alone, the module builds once (about two minutes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
COMPILE_REQUIRES = PYPROJECT["tool"]["requence-exporter"]["compile-requires"]
NAME = PROJECT["name"].replace("-", "_")
VERSION = PROJECT["version"]
BUILD_TIMEOUT = 1500  # the mypyc build, on a busy 2-core machine
ALERTS = ROOT / "grafana" / "alerts.yml"


@dataclass(frozen=True)
class Dist:
    """What the build produced."""

    sdist: Path
    wheel: Path
    compiled: Path


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this venv's or the checkout's hold on imports."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "REQUENCE_EXPORTER_COMPILE"}
    }
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def fresh_venv(path: Path) -> Path:
    """A new venv, outside the checkout; returns its bin directory."""
    # The same Python as this one, so the compiled wheel's tag fits.
    run(sys.executable, "-m", "venv", path, cwd=path.parent, env=clean_env())
    return path / "bin"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    # `build` and `twine` come from the project's `release` extra.
    require_tool("pyproject-build")
    require_tool("twine")
    given = os.environ.get("REQUENCE_EXPORTER_DIST")
    if given:
        # `make test` builds once (scripts/build-dist) for these tests and the compiled tree.
        out = ROOT / given
    else:
        out = tmp_path_factory.mktemp("dist")
        run(ROOT / "scripts" / "build-dist", sys.executable, out, cwd=ROOT, env=clean_env())
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*-py3-none-any.whl")
    [compiled] = (out / "compiled").glob("*.whl")
    return Dist(sdist=sdist, wheel=wheel, compiled=compiled)


def test_twine_accepts_the_sdist_and_the_wheels(dist: Dist) -> None:
    output = run(
        require_tool("twine"),
        "check",
        "--strict",
        dist.sdist,
        dist.wheel,
        dist.compiled,
        cwd=dist.sdist.parent,
    )
    assert output.count("PASSED") == 3, output


def test_the_sdist_and_wheels_carry_the_license(dist: Dist) -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    with tarfile.open(dist.sdist) as sdist:
        member = sdist.extractfile(f"{NAME}-{VERSION}/LICENSE")
        assert member is not None
        assert member.read().decode() == license_text
        pkg_info = sdist.extractfile(f"{NAME}-{VERSION}/PKG-INFO")
        assert pkg_info is not None
        assert "License-Expression: Apache-2.0" in pkg_info.read().decode()
    for wheel in (dist.wheel, dist.compiled):
        with zipfile.ZipFile(wheel) as archive:
            info = f"{NAME}-{VERSION}.dist-info"
            assert archive.read(f"{info}/licenses/LICENSE").decode() == license_text
            assert "License-Expression: Apache-2.0" in archive.read(f"{info}/METADATA").decode()


def test_the_sdist_holds_what_builds_the_package_and_no_tests(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as sdist:
        names = {name.partition("/")[2] for name in sdist.getnames()}
    assert {"setup.py", "pyproject.toml", "README.md", "LICENSE", "exporter/__init__.py"} <= names
    # The tests need the repository around them (tools, charts, the benchmark): none of them
    # in the sdist, rather than the part setuptools would add that could not run.
    assert not [name for name in names if name.startswith("tests")]


def test_the_compiled_wheel_holds_the_extensions_and_the_pure_one_none(dist: Dist) -> None:
    with zipfile.ZipFile(dist.compiled) as archive:
        extensions = [n for n in archive.namelist() if n.endswith(".so")]
    assert "exporter/core/tracker" in " ".join(extensions)
    with zipfile.ZipFile(dist.wheel) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".so")]
        # The wheel holds the package, not the tests or tools around it.
        assert not [n for n in archive.namelist() if n.startswith(("tests/", "bench/"))]


class Demo:
    """`requence-exporter demo` from an installed wheel, over loopback, stopped on exit."""

    def __init__(self, bin_dir: Path, cwd: Path) -> None:
        self._proc = subprocess.Popen(
            [bin_dir / "requence-exporter", "demo", "--listen", "127.0.0.1:0", "--rate", "200"],
            cwd=cwd,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        self.lines.extend(self._proc.stdout)

    def base_url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if "status JSON" in line:
                    return line.split()[-1].removesuffix("/status")
            if self._proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("demo printed no address:\n" + "".join(self.lines))

    def stop(self) -> int:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        code = self._proc.wait(30)
        self._reader.join(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        return code


@pytest.fixture
def demo_of() -> Iterator[Any]:
    started: list[Demo] = []

    def start(bin_dir: Path, cwd: Path) -> Demo:
        demo = Demo(bin_dir, cwd)
        started.append(demo)
        return demo

    yield start
    for demo in started:
        demo.stop()


def status_with_tasks(base: str, timeout: float = 60) -> dict[str, Any]:
    """/status once the exporter has processed updates and counted a started task."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        time.sleep(0.25)
        try:
            status = httpx.get(f"{base}/status", timeout=2).json()
            metrics = httpx.get(f"{base}/metrics", timeout=2).text
        except httpx.HTTPError:
            continue
        started = sum(
            sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "requence_tasks_started_total"
        )
        if status.get("position") and started > 0:
            return status
    raise AssertionError(f"no task counted within {timeout}s; last status {status}")


def install(tmp_path: Path, wheel: Path) -> Path:
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", "--quiet", wheel, cwd=tmp_path, env=clean_env())
    return bin_dir


def python_says(bin_dir: Path, code: str, cwd: Path) -> str:
    return run(bin_dir / "python", "-I", "-c", code, cwd=cwd, env=clean_env()).strip()


@pytest.mark.parametrize("compiled", [False, True], ids=["pure", "compiled"])
def test_each_wheel_installs_in_a_bare_venv_and_runs(
    dist: Dist, tmp_path: Path, demo_of: Any, compiled: bool
) -> None:
    bin_dir = install(tmp_path, dist.compiled if compiled else dist.wheel)
    where, version, built = python_says(
        bin_dir,
        "import exporter; print(exporter.__file__, exporter.__version__, exporter.is_compiled())",
        tmp_path,
    ).split()
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    assert version == VERSION
    assert built == str(compiled)
    # The rule file the package prints is the one the repository ships.
    rules = run(bin_dir / "requence-exporter", "rules", cwd=tmp_path, env=clean_env())
    assert rules == ALERTS.read_text()
    # A few seconds of the demo: tasks counted on /metrics, then a clean stop.
    demo = demo_of(bin_dir, tmp_path)
    status = status_with_tasks(demo.base_url())
    assert status["compiled"] is compiled
    assert status["version"] == VERSION
    assert status["connected"] is True
    assert demo.stop() == 0, "".join(demo.lines)
    build = "compiled" if compiled else "pure Python"
    assert any(f"({build}) starting" in line for line in demo.lines), "".join(demo.lines)


def test_the_compiled_build_got_its_requirements_from_the_package(dist: Dist) -> None:
    # The compiled wheel was built in an isolated environment holding what setup.py declares
    # (mypy, the stubs, the dependencies), not in a venv someone prepared.
    log = (dist.sdist.parent / "build.log").read_text()
    compiled_step = log[log.index("=== compiled wheel") :]
    for requirement in COMPILE_REQUIRES:
        assert f"  - {requirement}\n" in compiled_step, requirement
    for requirement in PROJECT["dependencies"]:
        assert f"  - {requirement}\n" in compiled_step, requirement


def test_the_lint_tools_type_check_as_the_compiled_build_does() -> None:
    # `make lint`'s mypy and stubs are those mypyc compiles with, so lint passes when it does.
    assert set(COMPILE_REQUIRES) <= set(PROJECT["optional-dependencies"]["lint"])


def test_installed_tests_import_the_installed_package_not_the_checkout(
    dist: Dist, tmp_path: Path
) -> None:
    # What the release workflow runs on each wheel, on one small test file here.
    bin_dir = install(tmp_path, dist.compiled)
    run(
        bin_dir / "pip",
        "install",
        "--quiet",
        "pytest>=8",
        "pytest-asyncio>=0.23",
        "hypothesis>=6.100",
        cwd=tmp_path,
        env=clean_env(),
    )
    output = run(
        ROOT / "scripts" / "installed-tests",
        bin_dir / "python",
        "tests/test_compiled.py",
        cwd=tmp_path,
        env=clean_env(REQUENCE_EXPORTER_EXPECT_COMPILED="1"),
    )
    assert f"installed-tests: exporter {VERSION} from {tmp_path}" in output
    assert "(compiled: True)" in output
    assert " passed" in output
