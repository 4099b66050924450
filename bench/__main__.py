"""`python -m bench`: measure the floors and the exporter on one stream; print ratios, save JSON.

Everything is measured in the same run, on the same pre-rendered stream served over loopback,
and reported as ratios to the floors measured alongside (never against absolute targets).
`--smoke` runs tiny sizes to prove the harness works.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench.render import Rendered, render
from bench.scrape import scrape_bench
from bench.stream_runs import exporter_run, raw_floor, sse_floor
from exporter import is_compiled
from exporter.serving.failures import DEFAULT_RECENT_FAILURES

RESULTS = Path(__file__).parent / "results"


class Plan:
    """Sizes and repetitions of one run."""

    def __init__(self, smoke: bool) -> None:
        self.smoke = smoke
        self.events = 2_000 if smoke else 100_000
        self.reps = {"coalesced": 1 if smoke else 5, "per-event": 1 if smoke else 3}
        self.scrape_series = (200, 1_000) if smoke else (1_000, 10_000, 100_000)
        self.scrape_reps = 2 if smoke else 5
        self.memory = (20_000, 2_000) if smoke else (1_000_000, 100_000)


def _median_run(runs: list[dict[str, Any]], events: int) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    median = statistics.median(seconds)
    summary: dict[str, Any] = {
        "seconds": median,
        "events_per_second": events / median,
        "runs": runs,
    }
    if "flush_seconds" in runs[0]:
        total = statistics.median(r["seconds"] + r["flush_seconds"] for r in runs)
        summary["seconds_with_flush"] = total
        summary["events_per_second_with_flush"] = events / total
        summary["spans_exported"] = max(r["spans_exported"] for r in runs)
        summary["spans_dropped"] = max(r["spans_dropped"] for r in runs)
        if all("span_process_cpu_seconds" in r for r in runs):
            cpu = statistics.median(r["span_process_cpu_seconds"] for r in runs)
            summary["span_process_cpu_seconds"] = cpu
    return summary


async def _repeat(
    reps: int, once: Callable[[], Awaitable[dict[str, Any]]], events: int
) -> dict[str, Any]:
    return _median_run([await once() for _ in range(reps)], events)


async def _timed_sse(url: str, last: int, *, parse_json: bool) -> dict[str, Any]:
    return {"seconds": await sse_floor(url, last, parse_json=parse_json)}


async def stream_bench(
    plan: Plan, stream: Rendered, feed_port: int, otlp_port: int
) -> dict[str, Any]:
    """Every reader of the stream, in both framings."""
    results: dict[str, Any] = {}
    last = stream.last_position
    n = stream.events
    otlp = f"http://127.0.0.1:{otlp_port}/v1/traces"
    for framing, body in (("coalesced", stream.coalesced), ("per-event", stream.per_event)):
        reps = plan.reps[framing]
        url = f"http://127.0.0.1:{feed_port}/{framing}"
        path = f"/{framing}"

        async def raw(path: str = path, size: int = len(body)) -> dict[str, Any]:
            return {"seconds": await asyncio.to_thread(raw_floor, feed_port, path, size)}

        runs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "raw_socket": raw,
            "httpx_sse": partial(_timed_sse, url, last, parse_json=False),
            "httpx_sse_json": partial(_timed_sse, url, last, parse_json=True),
            "exporter": partial(exporter_run, url, last),
            "exporter_traces": partial(exporter_run, url, last, otlp_endpoint=otlp),
        }
        results[framing] = {}
        for name, once in runs.items():
            print(f"  {framing:10} {name:16}", end="", flush=True)
            summary = await _repeat(reps, once, n)
            results[framing][name] = summary
            print(f"{summary['events_per_second']:>12,.0f} events/s")
    return results


def _in_subprocess(module: str, *args: int) -> dict[str, Any]:
    """The JSON a bench module prints, run in a fresh process (memory starts clean)."""
    out = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def memory_bench(tasks: int, cap: int) -> dict[str, Any]:
    """RSS under never-finishing tasks, measured in a fresh process."""
    return _in_subprocess("bench.memory", tasks, cap)


def failure_memory_bench(count: int) -> dict[str, Any]:
    """Memory the recent-failures ring holds, measured in a fresh process."""
    return _in_subprocess("bench.failure_memory", count)


def ratios(stream: dict[str, Any]) -> dict[str, Any]:
    """Each reader's rate as a multiple of the bare httpx + httpx-sse + json.loads floor."""
    out: dict[str, Any] = {}
    for framing, runs in stream.items():
        floor = runs["httpx_sse_json"]["events_per_second"]
        out[framing] = {name: run["events_per_second"] / floor for name, run in runs.items()}
        traced = runs["exporter_traces"]
        out[framing]["exporter_traces_with_flush"] = traced["events_per_second_with_flush"] / floor
    return out


def report(results: dict[str, Any]) -> str:
    """The human-readable summary."""
    config = results["config"]
    lines = [
        f"stream: {config['events']:,} updates, {config['bytes_per_update']:.0f} bytes each, "
        f"seed {config['seed']}; exporter {results['host']['exporter_build']}",
        "",
        f"{'reader':26}{'coalesced/s':>14}{'x floor':>9}{'per-event/s':>14}{'x floor':>9}",
    ]
    stream, rel = results["stream"], results["ratios"]
    names = [*stream["coalesced"], "exporter_traces_with_flush"]
    for name in names:
        row = f"{name:26}"
        for framing in ("coalesced", "per-event"):
            run = stream[framing].get(name) or stream[framing]["exporter_traces"]
            rate = (
                run["events_per_second_with_flush"]
                if name.endswith("_with_flush")
                else run["events_per_second"]
            )
            row += f"{rate:>14,.0f}{rel[framing][name]:>8.2f}x"
        lines.append(row)
    for framing in ("coalesced", "per-event"):
        traced = stream[framing]["exporter_traces"]
        line = (
            f"spans ({framing}): {traced['spans_exported']:,} exported, "
            f"{traced['spans_dropped']:,} dropped"
        )
        if "span_process_cpu_seconds" in traced:
            line += f", span process CPU {traced['span_process_cpu_seconds']:.2f} s (median run)"
        lines.append(line)
    lines += ["", f"{'scrape':26}{'series':>10}{'MB':>8}{'GET /metrics s':>16}{'render s':>10}"]
    for size, scrape in results["scrape"].items():
        lines.append(
            f"{'/metrics @ ' + size:26}{scrape['series']:>10,}{scrape['bytes'] / 1e6:>8.1f}"
            f"{scrape['http_seconds']:>16.3f}{scrape['render_seconds']:>10.3f}"
        )
    memory = results["memory"]
    lines += [
        "",
        f"memory: {memory['bytes_per_task']:.0f} bytes per tracked task (taskStart only); "
        f"RSS {memory['rss_at_cap'] / 1e6:.1f} MB at {memory['cap']:,} tasks, "
        f"{memory['rss_end'] / 1e6:.1f} MB after {memory['tasks']:,} "
        f"({memory['growth_cap_to_end'] * 100:+.1f}%)",
    ]
    failures = results["failure_memory"]
    worst, typical, large = (
        failures["worst_case"],
        failures["typical"],
        failures["worst_case_large"],
    )
    lines.append(
        f"failure ring: {worst['bytes'] / 1024:.0f} KiB for {worst['failures']} worst-case "
        f"failures ({worst['bytes_per_failure']:.0f} bytes each), "
        f"{typical['bytes'] / 1024:.0f} KiB typical; at --recent-failures "
        f"{large['max_count']:,}: {large['failures']:,} kept, {large['bytes'] / 1024:.0f} KiB "
        f"(budget {large['budget_bytes'] / 1024:.0f} KiB)"
    )
    return "\n".join(lines)


async def scrapes(plan: Plan) -> dict[str, Any]:
    """GET /metrics at each series count."""
    out: dict[str, Any] = {}
    for size in plan.scrape_series:
        print(f"  {size:,} series", flush=True)
        out[str(size)] = await scrape_bench(size, plan.scrape_reps)
    return out


def run(plan: Plan) -> dict[str, Any]:
    """Render, serve, measure everything; the results document."""
    started = time.time()
    stream = render(plan.events)
    results: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench" if not plan.smoke else "python -m bench --smoke",
        "host": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "exporter_build": "compiled" if is_compiled() else "pure Python",
        },
        "config": {
            "events": stream.events,
            "seed": 7,
            "tasks": stream.task_ids,
            "bytes_per_update": stream.event_bytes / stream.events,
            "repetitions": plan.reps,
            "smoke": plan.smoke,
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "coalesced.bin").write_bytes(stream.coalesced)
        Path(folder, "per_event.bin").write_bytes(stream.per_event)
        servers = subprocess.Popen(
            [sys.executable, "-m", "bench.loopback", folder],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert servers.stdout is not None
            feed_port, otlp_port = map(int, servers.stdout.readline().split())
            print("stream readers (median events/s):")
            results["stream"] = asyncio.run(stream_bench(plan, stream, feed_port, otlp_port))
        finally:
            assert servers.stdin is not None
            servers.stdin.close()
            servers.wait(10)
    results["ratios"] = ratios(results["stream"])
    print("scrapes:")
    results["scrape"] = asyncio.run(scrapes(plan))
    print("memory (in a subprocess)", flush=True)
    results["memory"] = memory_bench(*plan.memory)
    results["failure_memory"] = failure_memory_bench(DEFAULT_RECENT_FAILURES)
    results["elapsed_seconds"] = time.time() - started
    return results


def main() -> None:
    """Parse flags, run, print the summary and write the JSON results."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: prove it works")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    args = parser.parse_args()
    results = run(Plan(args.smoke))
    print()
    print(report(results))
    args.out.mkdir(parents=True, exist_ok=True)
    name = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json"
    path = args.out / name
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {path} in {results['elapsed_seconds']:.0f}s")


if __name__ == "__main__":
    main()
