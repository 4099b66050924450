"""`requence-exporter rules`: the committed rule file is its output; flags and YAML configure it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.cli import _parser
from exporter.metrics.alerting.command import build_config
from exporter.metrics.alerting.objectives import THRESHOLDS, RuleConfig, latency_objective
from exporter.metrics.alerting.render import render, rules_text
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "grafana" / "alerts.yml"
# Raw series the rules read (recorded series have colons in their names).
_RAW = re.compile(r"\b(up|requence_[a-z_]+)(\{[^}]*\})?(?=[\[\s)]|$)")


def _rules(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "rules", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def _config(*args: str) -> RuleConfig:
    return build_config(_parser().parse_args(["rules", *args]))


def _promtool_check(text: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_rule_file_is_the_commands_output_with_defaults() -> None:
    result = _rules()
    assert result.returncode == 0, result.stderr
    assert result.stdout == RULES.read_text(encoding="utf-8")


def test_objectives_and_latency_from_flags(tmp_path: Path) -> None:
    result = _rules(
        "--objective",
        "0.995",
        "--objective",
        "invoice-processing=0.999",
        "--latency",
        "image-resize=2.5s:0.95",
    )
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    records = [r for g in doc["groups"] for r in g["rules"] if "record" in r]
    overrides = [r for r in records if r["record"].endswith(":override")]
    assert overrides == [
        {
            "record": "task_name:requence_slo_availability_objective:override",
            "expr": "vector(0.999)",
            "labels": {"task_name": "invoice-processing", "objective": "0.999"},
        },
        {
            "record": "task_name:requence_slo_latency_objective:override",
            "expr": "vector(0.95)",
            "labels": {
                "task_name": "image-resize",
                "le": "2.5",
                "threshold": "2.5s",
                "objective": "0.95",
            },
        },
    ]
    default = next(r for r in records if r["record"].endswith("availability_objective:ratio"))
    assert '"objective", "0.995"' in default["expr"]
    _promtool_check(result.stdout, tmp_path)


def test_latency_threshold_must_be_a_bucket_and_the_error_names_the_nearest() -> None:
    result = _rules("--latency", "image-resize=2s:0.95")
    assert result.returncode == 2
    assert "not a task duration bucket; the nearest are 1s and 2.5s" in result.stderr
    assert result.stdout == ""
    with pytest.raises(ValueError, match="the nearest are 1d"):
        latency_objective("x", "3d", 0.9)
    assert latency_objective("x", "1m", 0.9).le == "60.0"
    assert latency_objective("x", "50ms", 0.9).le == "0.05"


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "slo_page_fast_long_windw=1h"],
        ["--set", "slo_page_fast_burn_rate=fast"],
        ["--objective", "x=1.5"],
        ["--objective", "x=high"],
        ["--latency", "image-resize:0.95"],
        ["--disable", "RequenceNoSuchAlert"],
    ],
)
def test_bad_options_exit_2_with_one_line(args: list[str]) -> None:
    result = _rules(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("requence-exporter rules: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("key", list(THRESHOLDS))
def test_every_threshold_can_be_overridden(key: str) -> None:
    """Every window, factor, `for`, volume and threshold reaches the rule text."""
    default = THRESHOLDS[key]
    if isinstance(default, float):
        value = "0.0123" if default < 1 else "7.77"
    elif isinstance(default, int):
        value = "7"
    elif key.endswith(("_window", "_for")):
        value = "17m"
    elif key == "runbook_base_url":
        value = "https://runbooks.example.invalid/x"
    else:
        value = "other-job"
    config = _config("--set", f"{key}={value}", "--enable", "RequenceTaskErrorRatioHigh")
    assert config.merged()[key] == type(default)(value)
    before = rules_text(RuleConfig(disabled=[]))
    after = rules_text(config)
    assert after != before
    assert value in after


def test_yaml_config_equals_the_same_flags(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(
        "thresholds:\n  slo_page_fast_for: 1m\n  exporter_job_regex: prod-requence\n"
        "slo:\n  objectives:\n    invoice-processing: 0.999\n"
        "  latency:\n    image-resize: {threshold: 1s, objective: 0.99}\n"
        "disabledAlerts: [RequenceTaskErrorRatioHigh, RequenceTaskAbortsSpiking]\n",
        encoding="utf-8",
    )
    from_file = _rules("--config", str(path))
    from_flags = _rules(
        "--set",
        "slo_page_fast_for=1m",
        "--job-regex",
        "prod-requence",
        "--objective",
        "invoice-processing=0.999",
        "--latency",
        "image-resize=1s:0.99",
        "--disable",
        "RequenceTaskAbortsSpiking",
    )
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout == from_flags.stdout
    assert "RequenceTaskAbortsSpiking" not in from_file.stdout


def test_a_changed_slo_window_scales_the_default_factors() -> None:
    merged = _config("--slo-window", "7d").merged()
    assert merged["slo_window"] == "7d"
    assert merged["slo_page_fast_burn_rate"] == 3.6
    assert merged["slo_ticket_slow_burn_rate"] == 0.25
    kept = _config("--slo-window", "7d", "--set", "slo_page_fast_burn_rate=10").merged()
    assert kept["slo_page_fast_burn_rate"] == 10.0
    # --set changes only what it names.
    assert _config("--set", "slo_window=7d").merged()["slo_page_fast_burn_rate"] == 14.4


def test_every_raw_series_is_scoped_to_the_job_regex() -> None:
    """Two releases with their own job regex never read each other's series."""
    doc = render(_config("--job-regex", "release-a", "--enable", "RequenceTaskErrorRatioHigh"))
    exprs = [rule["expr"] for group in doc["groups"] for rule in group["rules"]]
    raw = [m for expr in exprs for m in _RAW.finditer(expr)]
    assert len(raw) > 40
    unscoped = {m.group(0) for m in raw if 'job=~"release-a"' not in (m.group(2) or "")}
    assert not unscoped


def test_error_ratio_alert_is_opt_in() -> None:
    assert "RequenceTaskErrorRatioHigh" not in RULES.read_text(encoding="utf-8")
    assert (
        'alert: "RequenceTaskErrorRatioHigh"'
        in _rules("--enable", "RequenceTaskErrorRatioHigh").stdout
    )
