"""The package build; everything else about the package is in pyproject.toml.

With REQUENCE_EXPORTER_COMPILE=1 the modules every update passes through are compiled to C
extensions with mypyc: `REQUENCE_EXPORTER_COMPILE=1 pip install .` (needs a C compiler). The
build fails rather than fall back. The compiled and the pure-Python package behave the same; the
test suite runs against both (`make test`).

mypyc type-checks the modules, so a compiled build needs mypy, the type stubs the modules import
(`[tool.requence-exporter] compile-requires` in pyproject.toml) and the package's own
dependencies. They are this build's requirements, so an isolated build (pip, `python -m build`,
cibuildwheel) installs them into its build environment: nothing has to be installed first.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from setuptools import setup

# The per-update path (stream bytes -> SSE -> decode -> pipeline -> tracker -> metrics) and the
# scrape path (labels, exposition); mypyc compiles each one into the same shared library.
COMPILED_MODULES = [
    "exporter/requence/sse.py",
    "exporter/requence/decode.py",
    "exporter/core/updates.py",
    "exporter/requence/pipeline.py",
    "exporter/core/tracker.py",
    "exporter/core/tasks.py",
    "exporter/metrics/store.py",
    "exporter/metrics/series.py",
    "exporter/metrics/families.py",
    "exporter/metrics/labels.py",
    "exporter/metrics/exposition.py",
    "exporter/core/status.py",
    "exporter/core/ids.py",
    "exporter/traces/spans.py",
    "exporter/traces/otlp_wire.py",
    "exporter/traces/otlp_replies.py",
    "exporter/serving/failures.py",
]


def _compile() -> bool:
    return os.environ.get("REQUENCE_EXPORTER_COMPILE", "") == "1"


def compile_requires() -> list[str]:
    """What a compiled build needs: mypy and the stubs, and the dependencies it type-checks."""
    pyproject = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text("utf-8"))
    own = pyproject["tool"]["requence-exporter"]["compile-requires"]
    return [*own, *pyproject["project"]["dependencies"]]


def _ext_modules() -> list[object]:
    if not _compile():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        if "egg_info" in sys.argv:
            return []  # asked for the build requirements, which bring mypyc
        raise SystemExit("REQUENCE_EXPORTER_COMPILE=1 needs mypy (mypyc) in the build") from None

    return list(mypycify(COMPILED_MODULES, opt_level="3", group_name="requence_exporter"))


setup(
    # PEP 517 builds ask setuptools for these before running this file for real; mypy (which
    # includes mypyc) and the rest are only installed when compiling.
    setup_requires=compile_requires() if _compile() else [],
    ext_modules=_ext_modules(),
)
