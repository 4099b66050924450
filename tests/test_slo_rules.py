"""`requence-exporter rules`: the committed rule file is its output; flags and YAML configure it."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.cli import _parser
from exporter.metrics.alerting.command import build_config, run_rules
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


@pytest.mark.slow
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
    elif key.endswith("_long_window"):
        value = "17h"
    elif key.endswith("_interval"):
        value = "30s" if key == "slo_interval" else "4m"
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


@pytest.mark.slow
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
    # However the window is set, the factors not set themselves follow it: `--set`, `--config`
    # and the chart's thresholds.slo_window give the same rules as --slo-window.
    assert _config("--set", "slo_window=7d").merged() == merged
    assert rules_text(_config("--set", "slo_window=7d")) == rules_text(
        _config("--slo-window", "7d")
    )


def test_every_raw_series_is_scoped_to_the_job_regex() -> None:
    """Two releases with their own job regex never read each other's series."""
    doc = render(_config("--job-regex", "release-a", "--enable", "RequenceTaskErrorRatioHigh"))
    exprs = [rule["expr"] for group in doc["groups"] for rule in group["rules"]]
    raw = [m for expr in exprs for m in _RAW.finditer(expr)]
    assert len(raw) > 30
    unscoped = {m.group(0) for m in raw if 'job=~"release-a"' not in (m.group(2) or "")}
    assert not unscoped


def test_error_ratio_alert_is_opt_in() -> None:
    assert "RequenceTaskErrorRatioHigh" not in RULES.read_text(encoding="utf-8")
    assert (
        'alert: "RequenceTaskErrorRatioHigh"'
        in _rules("--enable", "RequenceTaskErrorRatioHigh").stdout
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "tasks_stuck_window=1h]) or vector(1) #"], "tasks_stuck_window"),
        (["--set", "tasks_stuck_window=90min"], "tasks_stuck_window"),
        (["--set", "slo_page_fast_for=1h30"], "slo_page_fast_for"),
        (["--set", "task_error_ratio=5"], "task_error_ratio"),
        (["--set", "task_error_ratio=-1"], "task_error_ratio"),
        (["--set", "task_error_ratio=1e999"], "task_error_ratio"),
        (["--set", "spans_dropped_ratio=nan"], "spans_dropped_ratio"),
        (["--set", "slo_page_fast_burn_rate=0"], "slo_page_fast_burn_rate"),
        (["--set", "slo_page_fast_burn_rate=inf"], "slo_page_fast_burn_rate"),
        (["--set", "slo_min_events=-3"], "slo_min_events"),
        (["--set", "slo_min_events=2.5"], "slo_min_events"),
        (["--set", "exporter_stall_seconds=0"], "exporter_stall_seconds"),
        (["--set", "slo_page_fast_short_window=2h"], "slo_page_fast_short_window"),
        (["--set", "slo_page_slow_short_window=7h"], "slo_page_slow_short_window"),
        (["--set", "runbook_base_url=https://x/{{ $value }}"], "runbook_base_url"),
        (["--job-regex", "a(?=b)"], "exporter_job_regex"),
        (["--job-regex", "a*+"], "exporter_job_regex"),
        # Python compiles a verbose flag and a flag group; RE2 refuses both.
        (["--job-regex", "(?x)a"], "exporter_job_regex"),
        (["--job-regex", "prod|(?i)x"], "exporter_job_regex"),
        (["--objective", "x=nan"], "objective"),
        (["--objective", "bad\nname=0.9"], "task name"),
    ],
)
def test_operator_values_are_checked_for_their_domain(args: list[str], message: str) -> None:
    """Values never reach the rules unchecked: each is refused with the key it came from."""
    result = _rules(*args)
    assert result.returncode == 2, result.stdout[:200]
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_yaml_alias_bomb_is_refused_without_expanding(tmp_path: Path) -> None:
    """377 bytes that a plain safe_load expands to gigabytes: refused at the first alias."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(bomb.read_bytes()) < 400
    result = _rules("--config", str(bomb))
    assert result.returncode == 2
    assert "anchors and aliases are not allowed" in result.stderr
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (2 << 20))
    assert "larger than" in _rules("--config", str(huge)).stderr


_HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "1h]) or vector(1) #",
            "90min",
            "0",
            "0s",
            "5m",
            "1h30m",
            "1y2w3d4h5m6s7ms",
            "1e999",
            "nan",
            "-1",
            "5",
            "0.5",
            "2.5",
            "1e-9",
            "}",
            '"',
            "\\",
            "{{ $value }}",
            "a(?=b)",
            "a*+",
            "(?x)a",
            "[[:alpha:]]",
            "https://ok.example/x",
            "9" * 30,
            "99999999999y",
        ]
    ),
)


@st.composite
def _hostile_args(draw: st.DrawFn) -> list[str]:
    args: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(sorted(THRESHOLDS)))
        args += ["--set", f"{key}={draw(_HOSTILE_TEXT)}"]
    if draw(st.booleans()):
        args += ["--objective", f"{draw(st.text(max_size=12))}={draw(_HOSTILE_TEXT)}"]
    if draw(st.booleans()):
        args += ["--latency", f"{draw(st.text(max_size=12))}={draw(_HOSTILE_TEXT)}:0.9"]
    if draw(st.booleans()):
        regex = st.sampled_from(["a(?=b)", "a*+", "(?x)a", "a{2000}", "\\Z", "(?P<n>a)", "x|"])
        args += ["--job-regex", draw(st.one_of(regex, _HOSTILE_TEXT))]
    if draw(st.booleans()):
        args += ["--slo-window", draw(_HOSTILE_TEXT)]
    return args


@pytest.mark.slow
def test_hostile_operator_input_gives_a_usage_error_or_a_file_promtool_accepts(
    tmp_path: Path,
) -> None:
    """Whatever the flags say, `rules` exits 0 with a valid rule file or 2 with one line."""
    written: list[tuple[Path, list[str]]] = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(_hostile_args())
    def run(args: list[str]) -> None:
        out, err = io.StringIO(), io.StringIO()
        try:
            parsed = _parser().parse_args(["rules", *args])
        except SystemExit:
            return  # argparse's own usage error (exit 2)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = run_rules(parsed)
        assert status in (0, 2)
        if status == 2:
            assert err.getvalue().startswith("requence-exporter rules: ")
            assert err.getvalue().count("\n") == 1
            assert out.getvalue() == ""
            return
        path = tmp_path / f"rules-{len(written)}.yml"
        path.write_text(out.getvalue(), encoding="utf-8")
        written.append((path, args))

    run()
    assert written, "no hostile input produced a rule file: the strategy tests nothing"
    result = subprocess.run(
        [require_tool("promtool"), "check", "rules", *(str(p) for p, _ in written)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    failed = [
        args for path, args in written if f"{path}\n  FAILED" in result.stdout + result.stderr
    ]
    assert result.returncode == 0, (failed, result.stdout[-2000:] + result.stderr[-2000:])


def test_the_latency_alert_can_be_disabled_without_a_latency_slo() -> None:
    result = _rules("--disable", "RequenceTaskLatencyBudgetBurn")
    assert result.returncode == 0, result.stderr
    assert "latency" not in result.stdout
