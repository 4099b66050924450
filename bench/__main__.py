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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.readers import BULK_READERS, Tree, parse_tree
from bench.render import Rendered, render
from bench.scrape import scrape_bench
from bench.servers import loopback, simulator
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
        # The trickle: the simulator's steady rate, read for `seconds` after `warmup`.
        self.rate = 200.0
        self.trickle_warmup = 1.0 if smoke else 3.0
        self.trickle_seconds = 2.0 if smoke else 20.0
        self.trickle_reps = 1 if smoke else 3


def _reader(tree: Tree, *args: str) -> dict[str, Any]:
    """One run of `python -m bench.readers ARGS` in a fresh process of `tree`."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.readers", *args],
        cwd=tree.path,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.readers {' '.join(args)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    if result["build"] != tree.build:
        raise RuntimeError(f"the {tree.name} tree at {tree.path} imported the {result['build']}")
    return result


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


_EXPORTERS = ("exporter", "exporter_httpx")  # the trickle's readers per tree


def _bulk_readers(trees: list[Tree]) -> list[tuple[str, Tree, str]]:
    """(name in the report, tree, reader): the floors once, the exporter once per tree."""
    names = ("exporter", "exporter_traces", "exporter_httpx")
    out = [(name, trees[0], name) for name in BULK_READERS if name not in names]
    for tree in trees:
        out += [(f"{name} {tree.name}", tree, name) for name in names]
    return out


def stream_bench(
    plan: Plan, stream: Rendered, feed_port: int, otlp_port: int, trees: list[Tree]
) -> dict[str, Any]:
    """Every reader of the stream, in both framings; the readers of one repetition in turn."""
    results: dict[str, Any] = {}
    last = str(stream.last_position)
    otlp = f"http://127.0.0.1:{otlp_port}/v1/traces"
    for framing, body in (("coalesced", stream.coalesced), ("per-event", stream.per_event)):
        url = f"http://127.0.0.1:{feed_port}/{framing}"
        where = ["--port", str(feed_port), "--path", f"/{framing}", "--size", str(len(body))]
        runs: dict[str, list[dict[str, Any]]] = {}
        for rep in range(plan.reps[framing]):
            print(f"  {framing} run {rep + 1}/{plan.reps[framing]}", flush=True)
            for name, tree, reader in _bulk_readers(trees):
                extra = ["--otlp", otlp] if reader == "exporter_traces" else where
                runs.setdefault(name, []).append(_reader(tree, "bulk", reader, url, last, *extra))
        results[framing] = {name: _median_run(r, stream.events) for name, r in runs.items()}
    return results


def trickle_bench(plan: Plan, trees: list[Tree]) -> dict[str, Any]:
    """CPU per update at the simulator's steady rate: the floors and each build, in turn."""
    readers = [("httpx_sse_json", trees[0]), ("httpx_sse_json_async", trees[0])]
    readers += [(f"{name} {tree.name}", tree) for tree in trees for name in _EXPORTERS]
    window = ["--warmup", str(plan.trickle_warmup), "--seconds", str(plan.trickle_seconds)]
    runs: dict[str, list[dict[str, Any]]] = {}
    with simulator(plan.rate, trees[0].path) as base_url:
        for rep in range(plan.trickle_reps):
            print(f"  trickle run {rep + 1}/{plan.trickle_reps}", flush=True)
            for name, tree in readers:
                reader = name.split()[0]
                runs.setdefault(name, []).append(
                    _reader(tree, "trickle", reader, base_url, *window)
                )
    out: dict[str, Any] = {"rate": plan.rate}
    for name, done in runs.items():
        per_update = statistics.median(r["cpu_seconds"] / r["updates"] for r in done)
        out[name] = {"cpu_seconds_per_update": per_update, "runs": done}
    floor = out["httpx_sse_json"]["cpu_seconds_per_update"]
    for name in runs:
        out[name]["x_floor"] = out[name]["cpu_seconds_per_update"] / floor
    return out


def _in_subprocess(module: str, *args: int, cwd: Path | None = None) -> dict[str, Any]:
    """The JSON a bench module prints, run in a fresh process (memory starts clean)."""
    out = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def memory_bench(tree: Tree, tasks: int, cap: int) -> dict[str, Any]:
    """RSS under never-finishing tasks, measured in a fresh process of `tree`."""
    return _in_subprocess("bench.memory", tasks, cap, cwd=tree.path)


def failure_memory_bench(count: int) -> dict[str, Any]:
    """Memory the recent-failures ring holds, measured in a fresh process."""
    return _in_subprocess("bench.failure_memory", count)


def ratios(stream: dict[str, Any]) -> dict[str, Any]:
    """Each reader's rate as a multiple of the floor: httpx.Client + httpx-sse + json.loads."""
    out: dict[str, Any] = {}
    for framing, runs in stream.items():
        floor = runs["httpx_sse_json"]["events_per_second"]
        out[framing] = {name: run["events_per_second"] / floor for name, run in runs.items()}
        for name, run in runs.items():
            if "events_per_second_with_flush" in run:
                with_flush = run["events_per_second_with_flush"] / floor
                out[framing][f"{name} with flush"] = with_flush
    return out


def _bulk_rows(results: dict[str, Any]) -> list[str]:
    stream, rel = results["stream"], results["ratios"]
    lines = [f"{'bulk':30}{'coalesced/s':>13}{'x floor':>9}{'per-event/s':>13}{'x floor':>9}"]
    for name in rel["coalesced"]:
        base = name.removesuffix(" with flush")
        row = f"{name:30}"
        for framing in ("coalesced", "per-event"):
            run = stream[framing][base]
            key = "events_per_second_with_flush" if name != base else "events_per_second"
            row += f"{run[key]:>13,.0f}{rel[framing][name]:>8.2f}x"
        lines.append(row + ("  <- the floor" if name == "httpx_sse_json" else ""))
    for framing in ("coalesced", "per-event"):
        for name, run in stream[framing].items():
            if "spans_exported" not in run:
                continue
            line = (
                f"spans ({framing}, {name}): {run['spans_exported']:,} exported, "
                f"{run['spans_dropped']:,} dropped"
            )
            if "span_process_cpu_seconds" in run:
                cpu = run["span_process_cpu_seconds"]
                line += f", span process CPU {cpu:.2f} s (median run)"
            lines.append(line)
    return lines


def _trickle_rows(results: dict[str, Any]) -> list[str]:
    trickle = results["trickle"]
    lines = [
        f"{'trickle at ' + format(trickle['rate'], 'g') + ' updates/s':30}"
        f"{'CPU us/update':>14}{'x floor':>9}{'updates/read':>14}"
    ]
    for name, run in trickle.items():
        if name == "rate":
            continue
        row = f"{name:30}{run['cpu_seconds_per_update'] * 1e6:>14.1f}{run['x_floor']:>8.2f}x"
        reads = [r["updates"] / r["reads"] for r in run["runs"] if r.get("reads")]
        if reads:
            row += f"{statistics.median(reads):>14.2f}"
        lines.append(row + ("  <- the floor" if name == "httpx_sse_json" else ""))
    return lines


def report(results: dict[str, Any]) -> str:
    """The human-readable summary."""
    config, host = results["config"], results["host"]
    lines = [
        f"machine: {host['cpus']} CPUs {host['machine']}, {host['cpu_model']}; "
        f"Python {host['python']}; builds: {', '.join(host['builds'])}",
        f"stream: {config['events']:,} updates, {config['bytes_per_update']:.0f} bytes each, "
        f"seed {config['seed']}; floor: httpx.Client + httpx-sse + json.loads",
        "",
        *_bulk_rows(results),
        "",
        *_trickle_rows(results),
        "",
        f"{'scrape':26}{'series':>10}{'MB':>8}{'GET /metrics s':>16}{'render s':>10}",
    ]
    for size, scrape in results["scrape"].items():
        lines.append(
            f"{'/metrics @ ' + size:26}{scrape['series']:>10,}{scrape['bytes'] / 1e6:>8.1f}"
            f"{scrape['http_seconds']:>16.3f}{scrape['render_seconds']:>10.3f}"
        )
    lines.append("")
    for name, memory in results["memory"].items():
        lines.append(
            f"memory, {name}: {memory['bytes_per_task']:.0f} bytes per tracked task (taskStart "
            f"only); RSS {memory['rss_at_cap'] / 1e6:.1f} MB at {memory['cap']:,} tasks, "
            f"{memory['rss_end'] / 1e6:.1f} MB after {memory['tasks']:,} "
            f"({memory['growth_cap_to_end'] * 100:+.1f}%)"
        )
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


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(plan: Plan, trees: list[Tree]) -> dict[str, Any]:
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
            "cpu_model": _cpu_model(),
            "builds": [tree.build for tree in trees],
            "exporter_build": "compiled" if is_compiled() else "pure Python",
        },
        "config": {
            "events": stream.events,
            "seed": 7,
            "tasks": stream.task_ids,
            "bytes_per_update": stream.event_bytes / stream.events,
            "repetitions": plan.reps,
            "trickle": {
                "rate": plan.rate,
                "warmup_seconds": plan.trickle_warmup,
                "seconds": plan.trickle_seconds,
                "repetitions": plan.trickle_reps,
            },
            "smoke": plan.smoke,
        },
    }
    with loopback(stream, trees[0].path) as (feed_port, otlp_port):
        print("stream readers, each run in a fresh process:")
        results["stream"] = stream_bench(plan, stream, feed_port, otlp_port, trees)
    results["ratios"] = ratios(results["stream"])
    print(f"trickle: the simulator at {plan.rate:g} updates/s")
    results["trickle"] = trickle_bench(plan, trees)
    print("scrapes:")
    results["scrape"] = asyncio.run(scrapes(plan))
    print("memory (in a subprocess)", flush=True)
    results["memory"] = {tree.name: memory_bench(tree, *plan.memory) for tree in trees}
    results["failure_memory"] = failure_memory_bench(DEFAULT_RECENT_FAILURES)
    results["elapsed_seconds"] = time.time() - started
    return results


def main() -> None:
    """Parse flags, run, print the summary and write the JSON results."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: prove it works")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument(
        "--tree",
        type=parse_tree,
        action="append",
        help="pure=DIR or compiled=DIR: a tree to run the exporter's readers from (repeatable; "
        "default: this one); the floors run from the first",
    )
    args = parser.parse_args()
    here = Tree("compiled" if is_compiled() else "pure", Path.cwd())
    results = run(Plan(args.smoke), args.tree or [here])
    print()
    print(report(results))
    args.out.mkdir(parents=True, exist_ok=True)
    name = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json"
    path = args.out / name
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {path} in {results['elapsed_seconds']:.0f}s")


if __name__ == "__main__":
    main()
