"""Finding the external tools tests need: skip with a reason when missing, fail under CI=true."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Path of executable `name`; skips the test when absent (fails instead when CI=true)."""
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"{name} is not installed (run `make tools` or install it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)
