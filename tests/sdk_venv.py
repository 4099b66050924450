"""A Python 3.12+ virtualenv with the official `requence` SDK from the package index, for tests.

The SDK needs Python 3.12 or later; the project runs on 3.11 too, so the SDK gets a virtualenv of
its own, made from an interpreter found on PATH or under pyenv. It is kept beside the project's
virtualenv (inside it, so `make clean` removes it and git never sees it) and reused while it
holds the pinned version. Without an interpreter the test is skipped, or fails under CI=true.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SDK = "requence==0.8.2"
_NAMES = ("python3.13", "python3.12")
_PYENV_ROOTS = (os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv")


def _usable(candidate: str) -> bool:
    """A pyenv shim exists even when its version is not selected: ask the interpreter itself."""
    try:
        done = subprocess.run(
            [candidate, "-c", "import sys, venv; sys.exit(sys.version_info < (3, 12))"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_interpreter() -> str | None:
    """A Python 3.12 or later: on PATH first, then any pyenv installation."""
    candidates = [found for name in _NAMES if (found := shutil.which(name))]
    for root in filter(None, _PYENV_ROOTS):
        for version in ("3.13", "3.12"):
            candidates += sorted(glob.glob(f"{root}/versions/{version}*/bin/python3"))
    return next((candidate for candidate in candidates if _usable(candidate)), None)


def sdk_python() -> str:
    """The interpreter of the SDK's virtualenv, created (or reused) on demand."""
    home = Path(sys.prefix) / "requence-sdk"
    python = home / "bin" / "python"
    ready = home / "ready"
    if ready.exists() and ready.read_text() == SDK and python.exists():
        return str(python)
    interpreter = find_interpreter()
    if interpreter is None:
        reason = "no Python 3.12 or later found (PATH, pyenv) for the official requence SDK"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([interpreter, "-m", "venv", str(home)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", SDK],
        check=True,
        timeout=600,
    )
    ready.write_text(SDK)
    return str(python)
