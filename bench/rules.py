"""`python -m bench.rules`: what the alert rules cost a Prometheus, on backfilled history.

For each size (task names x instances) it writes, as OpenMetrics, the series the exporter
exposes (task counters and duration histograms, node counters and histograms, gauges, its own
series) every 15 s over `--hours` of raw history, and the series the rules record and read over
ranges (base rates every slo_interval, the SLO window's sums, the jobs seen) over
`--recorded-days`; backfills them with `promtool tsdb create-blocks-from openmetrics`; starts
Prometheus on the blocks and asks for every rule's expression at the end of the history with
`stats=all`, which reports the samples each evaluation reads (`totalQueryableSamples`). A rule
whose ranges reach further than the history holds is scaled up to 28 days ("28d" columns).
Then Prometheus evaluates the rule file itself and `prometheus_rule_group_last_duration_seconds`
(the rules API's evaluationTime) says how long each group takes: x evaluations per minute is
the CPU figure.

`--rules FILE` measures another rule file (an older one, to compare), `--chart` the Helm chart's
rules for the same data. `--smoke` runs tiny sizes (the test suite asserts on its structure).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import yaml

from exporter.core.units import promql_duration
from exporter.metrics.alerting.objectives import RuleConfig
from exporter.metrics.alerting.render import render
from exporter.metrics.families import DEFAULT_NODE_BUCKETS, DEFAULT_TASK_BUCKETS

__all__ = ["main", "measure", "write_history"]

SCRAPE_S = 15
JOB = "requence-exporter"
NAMESPACE = "team1"
DAY = 86_400
# A selector with a range: the metric name (recorded ones have colons) and the range.
_RANGE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})?\[([0-9a-z]+)(?::[0-9a-z]*)?\]")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _le(bound: float) -> str:
    return repr(float(bound))


def _series(names: int, instances: int, raw_s: int) -> Iterator[tuple[str, float, int]]:
    """(series text, increase per second, seconds of history) of every raw series."""
    nodes_s = min(raw_s, 900)  # node series matter to 5m windows only: a quarter hour of them
    gauges_s = min(raw_s, 3 * 3600)
    for i in range(instances):
        inst = f'job="{JOB}",namespace="{NAMESPACE}",instance="10.0.0.{i}:9721"'
        yield f"up{{{inst}}}", 0.0, raw_s
        yield f"requence_exporter_stream_connected{{{inst}}}", 0.0, raw_s
        yield f'requence_exporter_updates_total{{{inst},type="taskEnd"}}', 5.0, raw_s
        for le in (*DEFAULT_TASK_BUCKETS, "+Inf"):
            bound = le if le == "+Inf" else _le(le)
            yield (
                f'requence_exporter_update_lag_seconds_bucket{{{inst},le="{bound}"}}',
                5.0,
                gauges_s,
            )
        for n in range(names):
            task = f'{inst},task_name="task-{n:03d}"'
            rate = 0.2
            yield f"requence_tasks_started_total{{{task}}}", rate, raw_s
            yield f"requence_tasks_ended_total{{{task}}}", rate * 0.98, raw_s
            yield f"requence_tasks_errored_total{{{task}}}", rate * 0.01, raw_s
            yield f"requence_tasks_aborted_total{{{task}}}", rate * 0.01, raw_s
            yield f"requence_tasks_in_progress{{{task}}}", 0.0, gauges_s
            yield (
                f"requence_tasks_oldest_in_progress_start_timestamp_seconds{{{task}}}",
                1.0,
                gauges_s,
            )
            for outcome, share in (("ended", 0.98), ("errored", 0.01), ("aborted", 0.01)):
                labels = f'{task},outcome="{outcome}"'
                for k, le in enumerate((*DEFAULT_TASK_BUCKETS, "+Inf")):
                    bound = le if le == "+Inf" else _le(le)
                    part = min(1.0, (k + 1) / 8)
                    yield (
                        f'requence_task_duration_seconds_bucket{{{labels},le="{bound}"}}',
                        rate * share * part,
                        raw_s,
                    )
                yield f"requence_task_duration_seconds_count{{{labels}}}", rate * share, raw_s
                yield f"requence_task_duration_seconds_sum{{{labels}}}", rate * share, raw_s
            for node in ("fetch", "resize", "store"):
                labels = f'{task},node="{node}",node_type="service"'
                for kind, share in (("started", 1.0), ("ended", 0.97), ("errored", 0.02)):
                    yield f"requence_nodes_{kind}_total{{{labels}}}", rate * share, nodes_s
                yield f"requence_nodes_deferred_total{{{labels}}}", rate * 0.01, nodes_s
                for outcome in ("ended", "errored", "deferred"):
                    for k, le in enumerate((*DEFAULT_NODE_BUCKETS, "+Inf")):
                        bound = le if le == "+Inf" else _le(le)
                        yield (
                            f"requence_node_duration_seconds_bucket"
                            f'{{{labels},outcome="{outcome}",le="{bound}"}}',
                            rate * min(1.0, (k + 1) / 10),
                            nodes_s,
                        )


def _recorded(names: int, recorded_s: int) -> Iterator[tuple[str, float, int, int]]:
    """(series, value, seconds of history, step) of the series the current rules record and
    read over ranges: what a Prometheus that has run them that long holds."""
    scope = f'job="{JOB}",namespace="{NAMESPACE}"'
    yield f"job:requence_exporter_up:present{{{scope}}}", 1.0, recorded_s, 300
    for n in range(names):
        task = f'{scope},task_name="task-{n:03d}"'
        yield f"task_name:requence_slo_error_events:rate_base{{{task}}}", 0.6, recorded_s, 60
        yield f"task_name:requence_slo_error_bad:rate_base{{{task}}}", 0.006, recorded_s, 60
        yield (
            f"task_name:requence_slo_error_events:increase_window{{{task}}}",
            1e6,
            recorded_s,
            300,
        )
        yield f"task_name:requence_tasks_finished:rate5m{{{task}}}", 0.6, 3 * 3600, SCRAPE_S


def write_history(
    out: TextIO, *, names: int, instances: int, raw_s: int, recorded_s: int, end: int
) -> int:
    """Write the OpenMetrics history ending at `end` (unix seconds); return its sample count."""
    count = 0
    for text, per_second, span, step in (
        *((t, v, s, SCRAPE_S) for t, v, s in _series(names, instances, raw_s)),
        *_recorded(names, recorded_s),
    ):
        start = end - span
        counter = per_second * step
        lines = [
            f"{text} {(k * counter) if counter else 1.0:.6g} {start + k * step}\n"
            for k in range(span // step + 1)
        ]
        out.writelines(lines)
        count += len(lines)
    out.write("# EOF\n")
    return count


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=600) as answer:  # noqa: S310 (http on 127.0.0.1)
        data: dict[str, Any] = json.loads(answer.read())
        return data


def _start(binary: str, data: Path, config: Path) -> tuple[subprocess.Popen[bytes], str]:
    address = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=60d",
            f"--web.listen-address={address}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{address}/-/ready", timeout=2).close()
            return proc, f"http://{address}"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("Prometheus did not become ready")


def _longest_ranges(expr: str) -> tuple[float, float]:
    """The longest range over raw series and over recorded ones in `expr`."""
    raw = recorded = 0.0
    for name, window in _RANGE.findall(expr):
        seconds = float(promql_duration(window))
        if ":" in name:
            recorded = max(recorded, seconds)
        else:
            raw = max(raw, seconds)
    return raw, recorded


def _interval(group: dict[str, Any], default_s: float) -> float:
    return float(promql_duration(group["interval"])) if "interval" in group else default_s


def measure(
    rules: dict[str, Any], base: str, end: float, history_s: dict[str, float], eval_s: float
) -> dict[str, Any]:
    """Samples each rule reads per evaluation at `end`, scaled to 28 days, and per minute."""
    rows = []
    for group in rules["groups"]:
        per_minute = 60.0 / _interval(group, eval_s)
        for rule in group["rules"]:
            query = urllib.parse.urlencode({"query": rule["expr"], "time": end, "stats": "all"})
            answer = _get(f"{base}/api/v1/query?{query}")
            samples = int(answer["data"]["stats"]["samples"]["totalQueryableSamples"])
            scale = 1.0
            for longest, held in zip(
                _longest_ranges(rule["expr"]),
                (history_s["raw"], history_s["recorded"]),
                strict=True,
            ):
                if longest > held:
                    scale = max(scale, min(longest, 28 * DAY) / held)
            rows.append(
                {
                    "group": group["name"],
                    "rule": rule.get("record") or rule.get("alert"),
                    "samples": samples,
                    "samples_28d": round(samples * scale),
                    "evaluations_per_minute": per_minute,
                }
            )
    total = sum(r["samples"] for r in rows)
    total_28d = sum(r["samples_28d"] for r in rows)
    minute = sum(r["samples"] * r["evaluations_per_minute"] for r in rows)
    minute_28d = sum(r["samples_28d"] * r["evaluations_per_minute"] for r in rows)
    return {
        "rules": rows,
        "samples_per_evaluation": total,
        "samples_per_evaluation_28d": total_28d,
        "samples_per_minute": round(minute),
        "samples_per_minute_28d": round(minute_28d),
    }


def group_durations(
    binary: str, data: Path, workdir: Path, rules: dict[str, Any], *, eval_s: float, wait_s: float
) -> dict[str, float]:
    """Prometheus evaluating `rules` on the backfilled blocks: seconds per group evaluation
    (the fastest of each group's evaluations after its first, within `wait_s`: the first
    creates its series, and other work on the machine only ever adds time)."""
    path = workdir / "measured-rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    config = workdir / "prometheus-rules.yml"
    config.write_text(
        yaml.safe_dump(
            {"global": {"evaluation_interval": f"{eval_s:g}s"}, "rule_files": [str(path)]}
        ),
        encoding="utf-8",
    )
    proc, base = _start(binary, data, config)
    try:
        stamps: dict[str, set[str]] = {}
        seconds: dict[str, float] = {}
        deadline = time.monotonic() + wait_s
        names = {g["name"] for g in rules["groups"]}
        while time.monotonic() < deadline:
            for group in _get(f"{base}/api/v1/rules")["data"]["groups"]:
                stamp = str(group.get("lastEvaluation", ""))
                if not stamp or stamp.startswith("0001"):
                    continue
                seen = stamps.setdefault(group["name"], set())
                if stamp not in seen:
                    seen.add(stamp)
                    took = float(group["evaluationTime"])
                    if len(seen) >= 2:
                        seconds[group["name"]] = min(took, seconds.get(group["name"], took))
            if all(len(stamps.get(n, ())) >= 4 for n in names):
                break
            time.sleep(1.0)
        return {n: seconds[n] for n in names if n in seconds}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def run_size(
    args: argparse.Namespace, names: int, label: str, rule_sets: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Backfill one size and measure every rule set on it."""
    promtool = shutil.which("promtool")
    prometheus = shutil.which("prometheus")
    if promtool is None or prometheus is None:
        raise SystemExit("bench.rules needs promtool and prometheus (scripts/ensure-tools)")
    raw_s = int(args.hours * 3600)
    recorded_s = int(args.recorded_days * DAY)
    end = int(time.time()) + 1200  # the history runs on while Prometheus evaluates the rules
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        work = Path(tmp)
        history = work / "history.om"
        with history.open("w", encoding="utf-8") as out:
            written = write_history(
                out,
                names=names,
                instances=args.instances,
                raw_s=raw_s,
                recorded_s=recorded_s,
                end=end,
            )
        data = work / "data"
        subprocess.run(
            # One block for the whole history: the backfill reads its input once per block.
            [
                promtool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                f"--max-block-duration={int(recorded_s // 3600) + 48}h",
                str(history),
                str(data),
            ],
            check=True,
            capture_output=True,
        )
        history.unlink()
        config = work / "prometheus.yml"
        config.write_text("global: {}\n", encoding="utf-8")
        proc, base = _start(prometheus, data, config)
        results: dict[str, Any] = {
            "names": names,
            "instances": args.instances,
            "backfilled": written,
        }
        try:
            now = time.time()
            held = {"raw": float(raw_s), "recorded": float(recorded_s)}
            for name, rules in rule_sets.items():
                results[name] = measure(rules, base, now, held, args.eval_interval)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        if not args.no_durations:
            for name, rules in rule_sets.items():
                results[name]["group_seconds"] = group_durations(
                    prometheus,
                    data,
                    work,
                    _quick(rules),
                    eval_s=args.eval_interval,
                    wait_s=args.wait,
                )
                results[name]["cpu_seconds_per_minute"] = _cpu(
                    rules, results[name]["group_seconds"], args.eval_interval
                )
        print(_report(label, results, rule_sets), flush=True)
        return results


def _quick(rules: dict[str, Any]) -> dict[str, Any]:
    """The rules with every group evaluated at least once a minute, to time them quickly (an
    evaluation reads the same samples whatever its group's interval)."""
    groups = [
        {**g, "interval": "30s"} if "interval" in g and promql_duration(g["interval"]) > 60 else g
        for g in rules["groups"]
    ]
    return {"groups": groups}


def _cpu(rules: dict[str, Any], seconds: dict[str, float], eval_s: float) -> float:
    return round(
        sum(seconds.get(g["name"], 0.0) * 60.0 / _interval(g, eval_s) for g in rules["groups"]),
        4,
    )


def _report(label: str, results: dict[str, Any], rule_sets: dict[str, Any]) -> str:
    lines = [f"{label}: {results['names']} task names x {results['instances']} instances"]
    for name in rule_sets:
        r = results[name]
        lines.append(
            f"  {name:<10} samples/evaluation {r['samples_per_evaluation']:>12,}"
            f"  28d {r['samples_per_evaluation_28d']:>14,}"
            f"  samples/minute {r['samples_per_minute']:>12,}"
            f"  28d {r['samples_per_minute_28d']:>14,}"
            + (
                f"  CPU s/min {r['cpu_seconds_per_minute']:.3f}  groups "
                + ", ".join(f"{g} {s * 1000:.1f}ms" for g, s in r["group_seconds"].items())
                if "group_seconds" in r
                else ""
            )
        )
    return "\n".join(lines)


def _chart_rules() -> dict[str, Any] | None:
    try:
        import helm_python as helm  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    chart = Path(__file__).resolve().parent.parent / "helm" / "requence-exporter"
    values = {
        "fullnameOverride": JOB,
        "requence": {"existingSecret": "requence"},
        "prometheusRule": {"enabled": True},
    }
    with helm.Chart.load(chart) as loaded:
        rendered = loaded.render(values, name="rel", namespace=NAMESPACE)
    for path, text in rendered.items():
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") == "PrometheusRule":
                return {"groups": doc["spec"]["groups"]}
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the rule cost benchmark; print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--recorded-days", type=float, default=28.0)
    parser.add_argument("--eval-interval", type=float, default=15.0)
    parser.add_argument("--wait", type=float, default=150.0, help="seconds to wait for groups")
    parser.add_argument("--rules", type=Path, action="append", default=[])
    parser.add_argument("--chart", action="store_true", help="also the Helm chart's rules")
    parser.add_argument("--no-durations", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no timing")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.smoke:
        args.names, args.instances, args.hours, args.recorded_days = [2], 2, 1.0, 0.5
        args.no_durations = True
    rule_sets: dict[str, dict[str, Any]] = {"default": render(RuleConfig())}
    for path in args.rules:
        rule_sets[path.stem] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if args.chart:
        chart = _chart_rules()
        if chart is None:
            print("helm-python-sdk is not installed: no chart rules", file=sys.stderr)
        else:
            rule_sets["chart"] = chart
    results = [run_size(args, n, f"{n} names", rule_sets) for n in args.names]
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
