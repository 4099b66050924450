"""Which build the tests run against: the source tree is pure Python, `make test-compiled` runs
the same tests in a tree holding the mypyc extensions (REQUENCE_EXPORTER_EXPECT_COMPILED=1).

A pure run catches a stale extension left beside a source file (it would shadow every edit); a
compiled run catches a build that silently fell back to pure Python.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import exporter

ROOT = Path(__file__).resolve().parents[1]
EXPECT_COMPILED = os.environ.get("REQUENCE_EXPORTER_EXPECT_COMPILED") == "1"


def _compiled_modules() -> list[str]:
    """`COMPILED_MODULES` from setup.py, as module names."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "COMPILED_MODULES" for t in node.targets
        ):
            paths = ast.literal_eval(node.value)
            return [p.removesuffix(".py").replace("/", ".") for p in paths]
    raise AssertionError("setup.py has no COMPILED_MODULES")


COMPILED_MODULES = _compiled_modules()


def test_the_compiled_list_names_real_modules() -> None:
    assert "exporter.core.tracker" in COMPILED_MODULES  # what is_compiled() looks at
    for name in COMPILED_MODULES:
        # A module spec, not a source path: the tests also run against an installed wheel.
        assert importlib.util.find_spec(name) is not None, name


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_module_is_built_as_expected(name: str) -> None:
    path = importlib.import_module(name).__file__
    assert path is not None
    is_extension = path.endswith(tuple(EXTENSION_SUFFIXES))
    assert is_extension is EXPECT_COMPILED, f"{name} loaded from {path}"


def test_is_compiled_reports_the_build() -> None:
    assert exporter.is_compiled() is EXPECT_COMPILED
