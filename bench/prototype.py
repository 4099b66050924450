"""`python -m bench.prototype`: the design that would take the pure build past the floor,
measured as a prototype against the exporter as it is and the floor, in one process.

The pure build's coalesced shortfall is interpreted work per update before the tracker: the
SSE decoder splits each read into lines and slices each event (a loop turn, three slices, two
texts and a tuple per update), and decoding calls msgspec once per event from Python. The
prototype (`bench/prototype/frame.c`, built here with the machine's C compiler, never shipped)
does the framing and hands each event's data to the same msgspec decoder in one C pass per
read; Python keeps the checks of `exporter.requence.decode._usual`, the pipeline's common path
and the tracker. Whatever is not on the common path (another shape, a skip, a position that
goes back, shards) goes through the exporter's own `SSEDecoder` and `Pipeline.feed`, so the
prototype's results are the exporter's (`tests/test_prototype_frame.py`).

Each run in a fresh process, the three paths alternating, medians and minima of the runs:

- by default, in one process, over the benchmark's coalesced stream cut into 256 KiB reads (no
  socket, so no reader's cost is in any figure: the floor's `httpx` reading, dearer than the
  exporter's own reader, is left out, which favours the floor): the floor (httpx-sse's line
  and event decoders, as `EventSource.iter_sse` runs them, and `json.loads`), the exporter
  (`SSEDecoder.feed` + `Pipeline.feed`) and the prototype; from either tree;
- with `--loopback`, reading the coalesced stream served by `bench.loopback` as `make bench`
  does: the floor as its `httpx_sse_json`, the exporter and the prototype as its `exporter`
  reader, the prototype's decoder and pipeline path given to that reader; the pure build only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

from bench.render import render, sse_events
from bench.servers import loopback as serve
from bench.stream_runs import bench_exporter, exporter_run, sync_floor
from exporter import is_compiled
from exporter.core.runtime import tune
from exporter.core.updates import LAST_TIMESTAMP, MAX_FUTURE_SECONDS, Update
from exporter.requence import intake
from exporter.requence.decode import _read_fields, _usual
from exporter.requence.pipeline import Pipeline
from exporter.requence.sse import _JOIN_LIMIT, STEP, RawEvent, SSEDecoder

SOURCE = Path(__file__).parent / "prototype" / "frame.c"
READ = 256 * 1024  # bytes per read, as a busy stream's reads are
ARRIVAL = 1_796_601_600.0  # a wall time after every update of the rendered stream
Item = tuple[str, str, bytes, Any]
Frame = Callable[[bytes, Callable[[bytes], Any], int], tuple[list[Item], int]]


def build(directory: Path) -> Path:
    """Compile `frame.c` into `directory` with the compiler Python was built with; the
    extension's path (POSIX: a shared object, as mypyc's builds on this platform)."""
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
    target = directory / f"_frame_prototype{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    flags = ["-O2", "-shared", "-fPIC", "-Wall", "-Werror", f"-I{include}"]
    subprocess.run([*compiler, *flags, str(SOURCE), "-o", str(target)], check=True)
    return target


def load(path: Path) -> Frame:
    """The `frame` function of the extension at `path`."""
    spec = importlib.util.spec_from_file_location("_frame_prototype", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frame: Frame = module.frame
    return frame


class PrototypeDecoder:
    """`SSEDecoder`'s interface with the usual events of a read taken by the C pass: `feed`
    returns them as plain `(event, id, data, fields)` tuples, then what an `SSEDecoder` made of
    the rest (as `RawEvent`s), in stream order. (It wraps the decoder rather than extend it: the
    compiled build's classes take no subclasses.)"""

    def __init__(self, frame: Frame, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self.decoder = SSEDecoder(max_event_bytes)
        self._frame = frame
        self.progress = 0  # blocks completed, as `SSEDecoder.progress` counts them

    @property
    def backlog(self) -> bool:
        """Whether the decoder holds blocks still to parse (`SSEDecoder.backlog`)."""
        return self.decoder.backlog

    def resume(self, budget: int = STEP) -> list[RawEvent]:
        """`SSEDecoder.resume`."""
        return self._count(self.decoder.resume(budget))

    def feed(self, chunk: bytes, budget: int | None = None) -> list[Any]:
        """`SSEDecoder.feed`, the read's usual events framed in C first."""
        decoder = self.decoder
        # Mid-way through a long or oversized event, or after a CR: the decoder's own way. With
        # CR line ends the C pass would take nothing (it takes LF-only blocks): not called.
        if (
            decoder._more
            or decoder._skipping
            or decoder._carry_cr
            or decoder.backlog
            or len(decoder._pending) > _JOIN_LIMIT
            or chunk.find(b"\r") >= 0
        ):
            return self._count(decoder.feed(chunk, budget))
        buffer = decoder._pending + chunk if decoder._pending else chunk
        items, stop = self._frame(buffer, _read_fields, decoder.max_event_bytes)
        if stop:
            self.progress += 1
        decoder._pending = b""
        if stop == len(buffer):
            return items
        rest = self._count(decoder.feed(buffer[stop:], budget))
        return items + rest if rest else items

    def _count(self, events: list[RawEvent]) -> list[RawEvent]:
        self.progress += self.decoder.progress
        self.decoder.progress = 0
        return events


_FEED: Final = Pipeline.feed  # the exporter's own, kept when `_loopback_one` replaces it


def prototype_feed(pipeline: Pipeline, events: Sequence[Any], arrival: float) -> None:
    """`Pipeline.feed` for what `PrototypeDecoder` returns: its usual events applied on the
    pipeline's common path, everything from the first event off it by `Pipeline.feed` itself."""
    status = pipeline.status
    tracker = pipeline.tracker
    recent = pipeline.recent_ids
    ring = recent._ring
    ring_at = recent._i
    not_after = min(arrival + MAX_FUTURE_SECONDS, LAST_TIMESTAMP)
    tracker.arrival = arrival
    last = status.position
    floor = last if last is not None else -1
    common = pipeline.shard is None and not pipeline._suspect
    quiet = pipeline.quiet_until
    lags: list[float] = []
    latest: Update | None = None
    done = 0
    for item in events:
        if type(item) is not tuple or not common:
            break
        event_type, event_id, _, fields = item
        if not (len(event_id) <= 18 and event_id.isascii() and event_id.isdigit()):
            break
        position = int(event_id)
        if position <= floor or position <= quiet:
            break
        update = None if fields is None else _usual(fields, event_type, position, not_after)
        if update is None:  # the whole way, with its skips and cuts: `Pipeline.feed`'s
            break
        if update.update_id is not None:
            ring[ring_at] = update.update_id
            ring_at = ring_at + 1 if ring_at + 1 < len(ring) else 0
        last = floor = status.position = position
        latest = update
        tracker.apply(update)
        lags.append(arrival - update.timestamp)
        done += 1
    recent._i = ring_at
    pipeline.metrics.observe_lags(lags)
    if latest is not None:
        status.last_update_timestamp = latest.timestamp
        status.last_update_arrival = arrival
    if done < len(events):
        rest = [RawEvent(e[0], e[1], e[2]) if type(e) is tuple else e for e in events[done:]]
        _FEED(pipeline, rest, arrival)


def _body(events: int) -> bytes:
    """The coalesced stream's SSE bytes, without HTTP chunk framing."""
    return b"".join(event for _, event in sse_events(events))


def _floor(reads: Sequence[bytes]) -> int:
    from httpx_sse._decoders import SSEDecoder as EventDecoder
    from httpx_sse._decoders import SSELineDecoder

    lines, events, loads, count = SSELineDecoder(), EventDecoder(), json.loads, 0
    for read in reads:
        for text in lines.decode(read.decode()):
            event = events.decode(text)
            if event is not None:
                loads(event.data)
                count += 1
    return count


def _apply(
    decoder: SSEDecoder | PrototypeDecoder,
    feed: Callable[[Pipeline, Any, float], None],
    pipeline: Pipeline,
    reads: Sequence[bytes],
) -> int:
    """The reads through `decoder` and `feed` (the exporter's, or the prototype's) into
    `pipeline`; the last position applied."""
    for read in reads:
        events = decoder.feed(read)
        if events:
            feed(pipeline, events, ARRIVAL)
    return pipeline.status.position or 0


PATHS: Final = ("floor", "exporter", "prototype")


def _in_process_one(path: str, body: bytes, frame: Frame) -> float:
    """Microseconds per update of one path over `body`, in this (fresh) process."""
    reads = [body[i : i + READ] for i in range(0, len(body), READ)]
    run: Callable[[], int]
    if path == "floor":
        run = partial(_floor, reads)
    else:
        tune()  # the command line's process settings; the floor runs with Python's
        pipeline = bench_exporter("http://127.0.0.1:1", "2026-01-01T00:00:00Z").pipeline
        if path == "exporter":
            run = partial(_apply, SSEDecoder(), _FEED, pipeline, reads)
        else:
            run = partial(_apply, PrototypeDecoder(frame), prototype_feed, pipeline, reads)
    gc.collect()
    start = time.perf_counter()
    counted = run()
    elapsed = time.perf_counter() - start
    events = body.count(b"\n\n")
    if counted != events:
        raise RuntimeError(f"{path} applied {counted} of {events} updates")
    return elapsed / events * 1e6


def _loopback_one(path: str, url: str, last: int, frame: Frame) -> float:
    """Seconds of one path reading the served stream, in this (fresh) process."""
    if path == "floor":
        return sync_floor(url, last)
    tune()
    if path == "prototype":
        # The exporter's reader and pipeline, given the prototype's decoder and common path.
        # Only the pure build's classes can be swapped so; the compiled build refuses.
        def decoder(max_event_bytes: int) -> PrototypeDecoder:
            return PrototypeDecoder(frame, max_event_bytes)

        intake.SSEDecoder = decoder  # type: ignore[attr-defined,assignment]
        Pipeline.feed = prototype_feed  # type: ignore[assignment]
    run = asyncio.run(exporter_run(url, last))
    if run["updates"] != last:
        raise RuntimeError(f"{path} counted {run['updates']} of {last} updates")
    seconds: float = run["seconds"]
    return seconds


def _alternate(reps: int, directory: Path, *where: str) -> dict[str, list[float]]:
    """Each path's figure from `reps` alternating runs, each in a fresh process."""
    runs: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(reps):
        for name in PATHS:
            command = [sys.executable, "-m", "bench.prototype", "--one", name, str(directory)]
            done = subprocess.run([*command, *where], check=True, capture_output=True, text=True)
            runs[name].append(float(done.stdout))
    return runs


def _summary(runs: dict[str, list[float]], **facts: Any) -> dict[str, Any]:
    """Medians and minima of each path, as microseconds per update and against the floor."""
    out: dict[str, Any] = {
        "build": "compiled" if is_compiled() else "pure Python",
        "python": sys.version.split()[0],
        **facts,
        "runs_us_per_update": {k: [round(v, 3) for v in values] for k, values in runs.items()},
    }
    for name, pick in (("median", statistics.median), ("min", min)):
        figures = {path: pick(values) for path, values in runs.items()}
        out[f"{name}_us_per_update"] = {path: round(v, 3) for path, v in figures.items()}
        out[f"{name}_x_floor"] = {p: round(figures["floor"] / v, 2) for p, v in figures.items()}
    return out


def in_process(events: int, reps: int, directory: Path) -> dict[str, Any]:
    """Each path over the stream's bytes in memory: no socket, no reader."""
    (directory / "body").write_bytes(_body(events))
    runs = _alternate(reps, directory)
    return _summary(runs, events=events, reps=reps, measured="in one process, no socket")


def loopback(events: int, reps: int, directory: Path) -> dict[str, Any]:
    """Each path reading the coalesced stream from `bench.loopback`, as `make bench` does:
    the floor as `httpx_sse_json`, the exporter and the prototype as its `exporter` reader."""
    if is_compiled():
        raise SystemExit("--loopback swaps the pure build's classes: run it from the source tree")
    stream = render(events)
    with serve(stream, Path(__file__).parent.parent) as (port, _):
        url = f"http://127.0.0.1:{port}/coalesced"
        runs = _alternate(reps, directory, url, str(stream.last_position))
    per_update = {k: [s / events * 1e6 for s in values] for k, values in runs.items()}
    return _summary(per_update, events=events, reps=reps, measured="over loopback, as make bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--loopback", action="store_true", help="read over loopback (pure)")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)  # PATH DIR [URL LAST]
    args = parser.parse_args()
    if args.one:
        path, directory, *where = args.one
        frame = load(next(Path(directory).glob("_frame_prototype*")))
        if where:
            print(_loopback_one(path, where[0], int(where[1]), frame))
        else:
            print(_in_process_one(path, Path(directory, "body").read_bytes(), frame))
        return
    with tempfile.TemporaryDirectory() as directory:
        build(Path(directory))
        measure = loopback if args.loopback else in_process
        print(json.dumps(measure(args.events, args.reps, Path(directory)), indent=2))


if __name__ == "__main__":
    main()
