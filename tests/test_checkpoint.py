"""The state file reader as a validation boundary: every value in its domain, memory bounded
before anything is parsed, a file in another layout set aside first, one exporter per file."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from exporter.core.checkpoint import SavedState, StateFile
from exporter.core.errors import ConfigError
from exporter.core.statelayout import LINE_LIMIT
from exporter.core.updates import MAX_ATTEMPTS_PER_TASK, MAX_NODES_PER_TASK, MAX_TEXT_BYTES
from tests.e2e.process import run_python

SINCE = "2026-11-22T09:00:00.000Z"
SEEN = 1795341000.0


def _task(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"task-{i}",
        "name": "invoice",
        "root": None,
        "start": SEEN,
        "incomplete": False,
        "last_seen": SEEN + i,
        "attempts": {"node-fetch": 1},
        "open": [["node-fetch", "service", "fetch", 1, SEEN]],
        "finished": [],
        **fields,
    }


def _tracker(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": 1, "latest_timestamp": SEEN, "finished_ids": [], "tasks": tasks}


def _save(path: Path, tasks: list[dict[str, Any]], **top: Any) -> None:
    """In the layout the exporter writes (one task per line)."""
    state = SavedState(top.get("since", SINCE), 5, top.get("recent", []), _tracker(tasks))
    StateFile(path).save(state)


def _one_line(path: Path, tasks: list[dict[str, Any]]) -> bytes:
    """In the layout of version 0.1.0 (the whole document on one line)."""
    document = {
        "version": 1,
        "saved_at": SEEN,
        "since": SINCE,
        "position": 5,
        "recent_ids": [],
        "tracker": _tracker(tasks),
    }
    raw = orjson.dumps(document)
    path.write_bytes(raw)
    return raw


def test_values_beyond_the_streams_bounds_are_cut_trimmed_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    nodes = MAX_NODES_PER_TASK + 30
    finished = [["n0", "service", None, 1, SEEN, SEEN + 1, "ended", "m" * 5000]] * (
        MAX_ATTEMPTS_PER_TASK + 20
    )
    endless = _task(
        0,
        id="t" * 2000,
        name="n" * 2000,
        attempts={f"n{k}": 1 for k in range(nodes)},
        open=[[f"n{k}", "service", None, 1, SEEN] for k in range(nodes)],
        finished=finished,
    )
    _save(path, [endless], recent=["u" * 1000])
    loaded = StateFile(path).load()
    assert loaded is not None
    [task] = loaded.tracker.tasks.values()
    assert len(task.task_id.encode()) <= MAX_TEXT_BYTES
    assert task.name == "n" * MAX_TEXT_BYTES
    assert len(task.attempts) == MAX_NODES_PER_TASK
    assert len(task.open) == MAX_NODES_PER_TASK
    assert len(task.finished) == MAX_ATTEMPTS_PER_TASK
    assert all(len((a.message or "").encode()) <= 2048 for a in task.finished)
    trims = loaded.tracker.trims
    assert trims.nodes_dropped == 2 * 30  # the attempts' and the open attempts' own
    assert trims.attempts_dropped == 20
    assert trims.cut["task_id"] == trims.cut["task_name"] == trims.cut["update_id"] == 1
    assert trims.cut["message"] == MAX_ATTEMPTS_PER_TASK
    assert [len(i) for i in loaded.recent_ids] == [MAX_TEXT_BYTES]


@pytest.mark.parametrize(
    "problem",
    [
        {"start": 253402351199.0},  # 9999-12-31T23:59:59-14:00: year 10000 in UTC
        {"last_seen": -62135647200.0},  # 0001-01-01T00:00:00+14:00: year 0
        {"attempts": {"n": 1}, "open": [["n", "service", None, 1, 1e300]]},
    ],
)
def test_a_time_that_cannot_be_rendered_sets_the_file_aside(
    tmp_path: Path, problem: dict[str, Any]
) -> None:
    path = tmp_path / "state.json"
    _save(path, [_task(1, **problem)])
    assert StateFile(path).load() is None
    assert [p.name.split("-")[0] for p in tmp_path.glob("state.json.corrupt-*")] == [
        "state.json.corrupt"
    ]


@pytest.mark.parametrize("since", ["2026-11-22T09:00:00", "\x1b[31mred", "9" * 100, 5])
def test_a_since_that_is_no_time_with_an_offset_sets_the_file_aside(
    tmp_path: Path, since: object
) -> None:
    path = tmp_path / "state.json"
    _save(path, [], since=since)
    assert StateFile(path).load() is None
    assert list(tmp_path.glob("state.json.corrupt-*"))


def test_a_line_too_long_or_too_costly_to_parse_is_refused_before_it_is_parsed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    # About 3 MiB that orjson would turn into a million empty lists (about 64 MiB).
    costly = _task(1, junk=[[] for _ in range(1_000_000)])
    _save(path, [costly])
    assert StateFile(path).load() is None
    long_line = _task(1, junk="x" * (LINE_LIMIT + 1))
    _save(path, [long_line])
    assert StateFile(path).load() is None
    problems = [r.getMessage() for r in caplog.records if "is corrupt" in r.getMessage()]
    assert len(problems) == 2
    assert "a task's line would take over" in problems[0]
    assert f"a task's line is over {LINE_LIMIT >> 20} MiB" in problems[1]


def test_a_file_in_another_layout_is_set_aside_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    # About 60,000 tasks on one line (15 MB): within the estimate allowed, but more than the
    # memory the reading process below may take, as under a container's memory limit.
    raw = _one_line(path, [_task(i) for i in range(60_000)])
    child = textwrap.dedent(
        f"""
        import resource, sys
        from pathlib import Path
        from exporter.core.checkpoint import StateFile
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                size = int(line.split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + (48 << 20), resource.RLIM_INFINITY))
        StateFile(Path({str(path)!r})).load()
        """
    )
    done = run_python("-c", child)
    assert done.returncode != 0, "the parse was expected to run out of memory"
    assert "MemoryError" in done.stderr
    assert not path.exists()  # set aside before the parse that ran out of memory
    [aside] = tmp_path.glob("state.json.old-layout-*")
    assert aside.read_bytes() == raw
    assert StateFile(path).load() is None  # the next start begins afresh


def test_a_file_in_another_layout_within_its_bounds_is_read_and_kept_aside(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    _one_line(path, [_task(i) for i in range(5)])
    loaded = StateFile(path).load(max_tasks=3)
    assert loaded is not None
    assert list(loaded.tracker.tasks) == ["task-2", "task-3", "task-4"]
    assert loaded.tracker.dropped == 2
    assert list(tmp_path.glob("state.json.old-layout-*"))
    assert not path.exists()  # the next checkpoint writes it in the line layout


def test_a_second_exporter_on_one_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first, second = StateFile(path), StateFile(path)
    first.lock()
    with pytest.raises(ConfigError) as info:
        second.lock()
    message = str(info.value)
    assert "in use by another exporter" in message
    assert f"process {os.getpid()}" in message
    assert "REQUENCE_EXPORTER_STATE_FILE" in message
    first.unlock()
    second.lock()  # free again once the first let go (or died)
    second.unlock()
