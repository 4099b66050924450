"""`bench.profiles` reads the samplers' output: start-up, exit and idle left out, shares summed.

The samplers themselves (py-spy, perf) run in `make profiles`; here their output formats are
read as they print them.
"""

from __future__ import annotations

import re

from bench.profiles import perf_stacks, py_spy_stacks, summarise

# `perf script -F ip,sym` as it prints: a blank line first, then one block per sample, innermost
# frame first, blocks apart by two blank lines; a function inlined into its caller is marked.
PERF = """
\t          1a2b3c CPyDef_decode____iso_seconds
\t          1a2b00 delta_total_seconds (inlined)
\t          1a2c00 CPyDef_decode___decode_update
\t          1a2d00 CPyDef_pipeline___Pipeline___feed
\t          2b0000 _PyEval_EvalFrameDefault
\t          2b1000 _PyFunction_Vectorcall
\t          2b0000 _PyEval_EvalFrameDefault


\t          1a3000 CPyDef_tracker___Tracker___apply
\t          1a2d00 CPyDef_pipeline___Pipeline___feed
\t          2b0000 _PyEval_EvalFrameDefault


\t          2c0000 _PyObject_Malloc
\t          2c1000 PyImport_ImportModuleLevelObject
\t          2c2000 Py_RunMain


\t          2d0000 gc_collect_main
\t          2d1000 finalize_modules
\t          2d2000 Py_FinalizeEx


\tffffffffffffffff [unknown]
\t          1a2d00 CPyDef_pipeline___Pipeline___feed

"""


def test_perf_samples_outside_start_up_and_exit_are_kept_outermost_first() -> None:
    stacks = list(perf_stacks(PERF))
    assert [frames for frames, _ in stacks] == [
        [
            "_PyEval_EvalFrameDefault",
            "_PyFunction_Vectorcall",
            "_PyEval_EvalFrameDefault",
            "CPyDef_pipeline___Pipeline___feed",
            "CPyDef_decode___decode_update",
            "delta_total_seconds",
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


def test_a_function_twice_in_a_stack_counts_once() -> None:
    # The interpreter's frame is twice in the first sample, once in the second: 2 of 3 samples.
    inclusive = summarise(perf_stacks(PERF), "title").split("self  function")[0]
    assert "66.7%  _PyEval_EvalFrameDefault" in inclusive


def test_the_share_outside_the_compiled_functions_is_counted() -> None:
    text = summarise(perf_stacks(PERF), "title", compiled="CPyDef_tracker")
    assert "66.7% outside the compiled functions (CPyDef_tracker...)" in text
