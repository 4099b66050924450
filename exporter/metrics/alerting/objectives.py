"""What a rule file is rendered from: thresholds, objectives per task name, disabled alerts.

One shape for the Helm values (`prometheusRule`), the YAML file of `requence-exporter rules
--config` and its flags: `thresholds` (any key of `THRESHOLDS`), `slo.objectives`
(task name -> availability objective), `slo.latency` (task name -> threshold and objective;
the threshold must be a task duration bucket) and `disabledAlerts`.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.core.units import duration_text, parse_duration, parse_whole, promql_duration
from exporter.metrics.alerting.rules import DEFAULT_THRESHOLDS
from exporter.metrics.alerting.slo import (
    ALERT_PAIRS,
    SLO_THRESHOLDS,
    LatencyObjective,
    objective_text,
)
from exporter.metrics.exposition import fmt_float
from exporter.metrics.families import DEFAULT_TASK_BUCKETS

__all__ = [
    "DEFAULT_DISABLED",
    "THRESHOLDS",
    "RuleConfig",
    "check_task_name",
    "check_threshold",
    "latency_objective",
]

THRESHOLDS: Final[dict[str, Any]] = {**DEFAULT_THRESHOLDS, **SLO_THRESHOLDS}
# The fixed-threshold error alert pages for the same cause as the burn-rate alert; it stays
# available for those who want a simple rule, off unless enabled.
DEFAULT_DISABLED: Final = ("RequenceTaskErrorRatioHigh",)
# The SLO window the default burn-rate factors are made for.
_FACTOR_WINDOW: Final = "28d"


def latency_objective(
    task_name: str,
    threshold: str,
    objective: float,
    buckets: tuple[float, ...] = DEFAULT_TASK_BUCKETS,
) -> LatencyObjective:
    """A latency SLO; the threshold must be a bucket, or the error names the nearest ones."""
    check_task_name(task_name, "latency")
    try:
        seconds = parse_duration(threshold)
    except ValueError as exc:
        raise ValueError(f"latency threshold of {task_name}: {exc}") from None
    if seconds not in buckets:
        below = [b for b in buckets if b < seconds]
        above = [b for b in buckets if b > seconds]
        nearest = " and ".join(duration_text(b) for b in (below[-1:] + above[:1]))
        raise ValueError(
            f"latency threshold {threshold} of {task_name} is not a task duration bucket; "
            f"the nearest are {nearest} (all: {', '.join(duration_text(b) for b in buckets)})"
        )
    return LatencyObjective(
        task_name, fmt_float(float(seconds)), duration_text(seconds), objective_text(objective)
    )


# Bounds of what a threshold may be: a count or a number of seconds, a burn-rate factor.
_MAX_COUNT: Final = 1_000_000_000
_MAX_FACTOR: Final = 1_000_000.0
# A job regex in the subset where Python's re and Prometheus's RE2 agree: no groups with `(?`
# (lookarounds, flags), no possessive quantifiers, escapes of punctuation only, no braces.
_JOB_REGEX: Final = re.compile(r"(?:[A-Za-z0-9_.:/|()\[\]^$*+?-]|\\[^A-Za-z0-9\s])+", re.ASCII)
_POSSESSIVE: Final = re.compile(r"[*+?]\+")
# `(?` not after an escaping backslash: a group with flags or a lookaround. Python takes
# `(?x)` (verbose) and lookarounds; RE2 refuses them, and Prometheus with them the whole file.
_QUESTION_GROUP: Final = re.compile(r"(?<!\\)(?:\\\\)*\(\?")
_URL: Final = re.compile(r"https?://[^\s\x00-\x1f\x7f\"'`{}<>\\]+", re.ASCII)
_MAX_TEXT: Final = 1024
_MAX_NAME: Final = 512
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _count(key: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        value = str(value)  # from YAML; text from flags
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a whole number, got {value!r}")
    low = 1 if key.endswith("_seconds") else 0
    try:
        return parse_whole(value, low, _MAX_COUNT)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _real(key: str, value: Any) -> float:
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{key}: expected a finite number, got {value!r}")
    if key == "slo_objective":
        objective_text(number)
    elif key.endswith("_ratio") and not 0 <= number <= 1:
        raise ValueError(f"{key}: a ratio is a fraction from 0 to 1 (0.05 = 5 %), not {number}")
    elif key.endswith("_burn_rate") and not 0 < number <= _MAX_FACTOR:
        raise ValueError(f"{key}: a burn-rate factor is above 0 (and at most 1e6), not {number}")
    elif number < 0:
        raise ValueError(f"{key}: expected a number of at least 0, not {number}")
    return number


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise ValueError(f"{key}: expected text of 1 to {_MAX_TEXT} characters, got {value!r}")
    if key.endswith(("_for", "_window", "_interval")):
        try:
            seconds = promql_duration(value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
        if seconds <= 0 and not key.endswith("_for"):
            raise ValueError(f"{key}: a window or interval must be longer than 0, got {value!r}")
        return value
    if key == "exporter_job_regex":
        if (
            not _JOB_REGEX.fullmatch(value)
            or _POSSESSIVE.search(value)
            or _QUESTION_GROUP.search(value)
        ):
            raise ValueError(
                f"{key}: use letters, digits, _ . : / - and the operators | ( ) [ ] ^ $ * + ? "
                f"(escape others with a backslash; no `(?` groups), got {value!r}"
            )
        try:
            with warnings.catch_warnings():  # "possible nested set": RE2 reads [[:alpha:]]
                warnings.simplefilter("ignore")
                re.compile(value)
        except re.error as exc:
            raise ValueError(f"{key}: not a regular expression ({exc}): {value!r}") from None
        return value
    if key == "runbook_base_url" and not _URL.fullmatch(value):
        raise ValueError(f"{key}: expected an http(s) URL without spaces or quotes: {value!r}")
    return value


def check_threshold(key: str, value: Any) -> Any:
    """`value` typed like the default of threshold `key` and checked for its domain; a
    ValueError names the key. Values from flags arrive as text, from YAML typed."""
    if key not in THRESHOLDS:
        raise ValueError(f"unknown threshold {key!r} (known: {', '.join(THRESHOLDS)})")
    default = THRESHOLDS[key]
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{key}: expected a value like {default!r}, got {value!r}")
    if isinstance(default, int):
        return _count(key, value)
    if isinstance(default, float):
        return _real(key, value)
    return _text(key, value)


def check_task_name(name: Any, where: str) -> str:
    """A task name an objective is set for: text without control characters, bounded."""
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME or _CONTROL.search(name):
        raise ValueError(
            f"{where}: a task name is 1 to {_MAX_NAME} characters without control characters, "
            f"got {name!r}"
        )
    return name


def _check_windows(t: dict[str, Any]) -> None:
    """Windows that cannot work together: a short window not shorter than its long one, a
    window shorter than the base window every longer one is summed from."""
    keys = [k for k in t if k.startswith("slo_") and k.endswith(("_window", "_interval"))]
    if any(str(t[k]).startswith("@@") for k in keys):
        return  # the chart's placeholders: its template checks them
    seconds = {k: promql_duration(str(t[k])) for k in keys}
    base = seconds["slo_page_fast_short_window"]
    base_text = t["slo_page_fast_short_window"]
    for pair in ALERT_PAIRS:
        short, long = f"slo_{pair.role}_short_window", f"slo_{pair.role}_long_window"
        if seconds[short] >= seconds[long]:
            raise ValueError(f"{short} ({t[short]}) must be shorter than {long} ({t[long]})")
    for key in keys:
        if key.endswith("_window") and seconds[key] < base:
            raise ValueError(
                f"{key} ({t[key]}) is shorter than slo_page_fast_short_window ({base_text}), "
                "the base window the others are summed from"
            )
    if seconds["slo_interval"] > base:
        raise ValueError(
            f"slo_interval ({t['slo_interval']}) must not be longer than "
            f"slo_page_fast_short_window ({t['slo_page_fast_short_window']})"
        )
    if seconds["slo_long_interval"] > 15 * 60:
        raise ValueError(f"slo_long_interval ({t['slo_long_interval']}) must be 15m or shorter")
    if seconds["slo_window_interval"] > 3600:
        raise ValueError(f"slo_window_interval ({t['slo_window_interval']}) must be 1h or shorter")


@dataclass
class RuleConfig:
    """Everything a rule file is rendered from, each part defaulting to the shipped file."""

    thresholds: dict[str, Any] = field(default_factory=dict)
    objectives: dict[str, float] = field(default_factory=dict)
    latency: dict[str, LatencyObjective] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=lambda: list(DEFAULT_DISABLED))

    def set_threshold(self, key: str, value: Any) -> None:
        """Override one threshold, typed like its default and checked for its domain."""
        self.thresholds[key] = check_threshold(key, value)

    def set_objective(self, task_name: str, objective: float) -> None:
        """The availability objective of one task name ("" sets the default)."""
        if not isinstance(objective, float) or not math.isfinite(objective):
            raise ValueError(f"objective of {task_name or 'the default'}: not a number")
        objective_text(objective)
        if task_name:
            self.objectives[check_task_name(task_name, "objective")] = objective
        else:
            self.set_threshold("slo_objective", objective)

    def merged(self) -> dict[str, Any]:
        """Every threshold: the defaults with this config's overrides.

        A burn-rate factor is (share of the budget spent) x (SLO window) / (long window), so
        the factors not set themselves scale with the SLO window, however it was set: 14.4
        over 1h for 28d becomes 3.6 for 7d.
        """
        merged = {**THRESHOLDS, **self.thresholds}
        window = str(merged["slo_window"])
        if "slo_window" in self.thresholds and not window.startswith("@@"):
            scale = promql_duration(window) / promql_duration(_FACTOR_WINDOW)
            for key in SLO_THRESHOLDS:
                if key.endswith("_burn_rate") and key not in self.thresholds:
                    merged[key] = THRESHOLDS[key] * scale
        _check_windows(merged)
        return merged

    def set_slo_window(self, window: str) -> None:
        """A new SLO window; the factors not set themselves scale with it (`merged`)."""
        self.set_threshold("slo_window", window)

    def update(self, doc: Any, source: str) -> None:
        """Apply a `prometheusRule`-shaped mapping (from a YAML file or the chart's values)."""
        if doc is None:
            return
        if not isinstance(doc, dict):
            raise ValueError(f"{source}: expected a mapping at the top")
        unknown = sorted(set(doc) - {"thresholds", "slo", "disabledAlerts"})
        if unknown:
            raise ValueError(f"{source}: unknown keys {', '.join(unknown)}")
        for key, value in _mapping(doc.get("thresholds"), f"{source}: thresholds").items():
            self.set_threshold(str(key), value)
        slo = _mapping(doc.get("slo"), f"{source}: slo")
        unknown = sorted(str(k) for k in set(slo) - {"objectives", "latency"})
        if unknown:
            raise ValueError(f"{source}: slo: unknown keys {', '.join(unknown)}")
        objectives = _mapping(slo.get("objectives"), f"{source}: slo.objectives")
        for name, objective in objectives.items():
            self.set_objective(
                check_task_name(name, f"{source}: slo.objectives"), _ratio(objective)
            )
        for name, spec in _mapping(slo.get("latency"), f"{source}: slo.latency").items():
            check_task_name(name, f"{source}: slo.latency")
            if not isinstance(spec, dict) or set(spec) != {"threshold", "objective"}:
                raise ValueError(f"{source}: slo.latency.{name} needs threshold and objective")
            if not isinstance(spec["threshold"], str):
                raise ValueError(f"{source}: slo.latency.{name}.threshold: expected e.g. 2.5s")
            self.latency[name] = latency_objective(
                name, spec["threshold"], _ratio(spec["objective"])
            )
        if "disabledAlerts" in doc:
            names = doc["disabledAlerts"] or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"{source}: disabledAlerts: expected a list of alert names")
            self.disabled = list(names)


def _mapping(value: Any, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping")
    return value


def _ratio(value: Any) -> float:
    """An objective from YAML: a number (bools and text are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"an objective is a number such as 0.99, not {value!r}")
    return float(value)
