"""The process-wide settings `requence-exporter` applies at start: the garbage collector's young
generation is collected every 10,000 allocations, not every 700, and nothing else moves.

Each case runs in a fresh interpreter: the collector's thresholds belong to the process.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from exporter.core.runtime import YOUNG_THRESHOLD

ROOT = Path(__file__).resolve().parent.parent


def thresholds_after(code: str) -> tuple[int, ...]:
    """The collector's thresholds a fresh interpreter has after running `code`."""
    done = subprocess.run(
        [sys.executable, "-c", f"import gc\n{code}\nprint(gc.get_threshold())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    value = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert isinstance(value, tuple)
    return value


def test_python_starts_with_a_lower_young_threshold() -> None:
    young, *_ = thresholds_after("pass")
    assert young < YOUNG_THRESHOLD


def test_the_command_line_raises_the_young_threshold_and_keeps_the_older_ones() -> None:
    default = thresholds_after("pass")
    # `run` with a setting it refuses: main() returns after the process settings are applied.
    code = (
        "import contextlib, io\n"
        "from exporter.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['run', '--task-ttl', 'never']) == 2"
    )
    assert thresholds_after(code) == (YOUNG_THRESHOLD, *default[1:])


def test_a_higher_threshold_or_a_collector_switched_off_is_left_alone() -> None:
    tune = "from exporter.core.runtime import tune\ntune()"
    assert thresholds_after(f"gc.set_threshold(50000, 5, 5)\n{tune}") == (50000, 5, 5)
    assert thresholds_after(f"gc.set_threshold(0, 10, 10)\n{tune}") == (0, 10, 10)
