"""`bench.profiles` reads the samplers' output: start-up, exit and idle left out, shares summed.

The samplers themselves (py-spy, perf) run in `make profiles`; here their output formats are
read as they print them.
"""

from __future__ import annotations

import re

from bench.profiles import perf_stacks, py_spy_stacks, summarise

# `perf script -F ip,sym`: one block per sample, innermost frame first.
PERF = """\
\t    7f01 CPyDef_decode____iso_seconds+0x1a
\t    7f02 CPyDef_decode___decode_update+0x40
\t    7f03 CPyDef_pipeline___Pipeline___feed+0x99
\t    7f04 _PyEval_EvalFrameDefault+0x10

\t    7f05 CPyDef_tracker___Tracker___apply+0x2
\t    7f03 CPyDef_pipeline___Pipeline___feed+0x12
\t    7f04 _PyEval_EvalFrameDefault+0x10

\t    9a01 _PyObject_Malloc+0x2
\t    9a02 PyImport_ImportModuleLevelObject+0x5
\t    9a03 Py_RunMain+0x1

\t    9b01 gc_collect_main+0x8
\t    9b02 finalize_modules+0x3
\t    9b03 Py_FinalizeEx+0x1

\t ffffffff81 [unknown]
\t    7f03 CPyDef_pipeline___Pipeline___feed+0x12
"""


def test_perf_samples_outside_start_up_and_exit_are_kept_outermost_first() -> None:
    stacks = list(perf_stacks(PERF))
    assert [frames for frames, _ in stacks] == [
        [
            "_PyEval_EvalFrameDefault",
            "CPyDef_pipeline___Pipeline___feed",
            "CPyDef_decode___decode_update",
            "CPyDef_decode____iso_seconds",
        ],
        [
            "_PyEval_EvalFrameDefault",
            "CPyDef_pipeline___Pipeline___feed",
            "CPyDef_tracker___Tracker___apply",
        ],
        ["CPyDef_pipeline___Pipeline___feed", "[unknown]"],
    ]
    assert all(n == 1 for _, n in stacks)


def test_py_spy_keeps_the_event_loops_turns_and_sums_lines_per_function() -> None:
    loop = "<module> (bench/readers.py:1);BaseEventLoop._run_once (asyncio/base_events.py:1909)"
    raw = "\n".join(
        [
            f"{loop};Pipeline.feed (exporter/requence/pipeline.py:131) 3",
            f"{loop};Pipeline.feed (exporter/requence/pipeline.py:148) 2",
            f"{loop};_find_and_load (<frozen importlib._bootstrap>:1176) 7",  # set-up
            "<module> (bench/readers.py:1);main (bench/readers.py:9) 5",  # outside the loop
        ]
    )
    stacks = list(py_spy_stacks(raw))
    assert [(frames[-1], n) for frames, n in stacks] == [
        ("Pipeline.feed (exporter/requence/pipeline.py)", 3),
        ("Pipeline.feed (exporter/requence/pipeline.py)", 2),
    ]
    text = summarise(stacks, "title")
    assert "samples: 5 " in text
    assert "100.0%  Pipeline.feed (exporter/requence/pipeline.py)" in text


def test_shares_are_inclusive_and_self_and_plumbing_is_not_listed() -> None:
    text = summarise(perf_stacks(PERF), "title", listed=re.compile(r"^_Py"))
    inclusive, own = text.split("self  function")
    assert "100.0%  CPyDef_pipeline___Pipeline___feed" in inclusive
    assert "33.3%  CPyDef_decode___decode_update" in inclusive
    assert "_PyEval_EvalFrameDefault" not in inclusive
    assert "33.3%  CPyDef_decode____iso_seconds" in own
    assert "CPyDef_decode___decode_update" not in own


def test_the_share_outside_the_compiled_functions_is_counted() -> None:
    text = summarise(perf_stacks(PERF), "title", compiled="CPyDef_tracker")
    assert "66.7% outside the compiled functions (CPyDef_tracker...)" in text
