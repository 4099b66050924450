"""What a rule file is rendered from: thresholds, objectives per task name, disabled alerts.

One shape for the Helm values (`prometheusRule`), the YAML file of `requence-exporter rules
--config` and its flags: `thresholds` (any key of `THRESHOLDS`), `slo.objectives`
(task name -> availability objective), `slo.latency` (task name -> threshold and objective;
the threshold must be a task duration bucket) and `disabledAlerts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.metrics.alerting.rules import DEFAULT_THRESHOLDS, duration_seconds
from exporter.metrics.alerting.slo import SLO_THRESHOLDS, LatencyObjective, objective_text
from exporter.metrics.exposition import fmt_float
from exporter.metrics.families import DEFAULT_TASK_BUCKETS

__all__ = [
    "DEFAULT_DISABLED",
    "THRESHOLDS",
    "RuleConfig",
    "bucket_text",
    "latency_objective",
    "parse_seconds",
]

THRESHOLDS: Final[dict[str, Any]] = {**DEFAULT_THRESHOLDS, **SLO_THRESHOLDS}
# The fixed-threshold error alert pages for the same cause as the burn-rate alert; it stays
# available for those who want a simple rule, off unless enabled.
DEFAULT_DISABLED: Final = ("RequenceTaskErrorRatioHigh",)
# The SLO window the default burn-rate factors are made for.
_FACTOR_WINDOW: Final = "28d"

_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_seconds(text: str) -> float:
    """Seconds in `2.5s`, `500ms`, `1m`, `2h`, `1d` or a bare number of seconds."""
    match = _SECONDS.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration (use e.g. 500ms, 2.5s, 1m): {text!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


def bucket_text(seconds: float) -> str:
    """A bucket bound as a short duration: 0.05 -> 50ms, 2.5 -> 2.5s, 60 -> 1m, 86400 -> 1d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1:
        return f"{seconds * 1000:.10g}ms"
    return f"{seconds:.10g}s"


def latency_objective(
    task_name: str,
    threshold: str,
    objective: float,
    buckets: tuple[float, ...] = DEFAULT_TASK_BUCKETS,
) -> LatencyObjective:
    """A latency SLO; the threshold must be a bucket, or the error names the nearest ones."""
    seconds = parse_seconds(threshold)
    if seconds not in buckets:
        below = [b for b in buckets if b < seconds]
        above = [b for b in buckets if b > seconds]
        nearest = " and ".join(bucket_text(b) for b in (below[-1:] + above[:1]))
        raise ValueError(
            f"latency threshold {threshold} of {task_name} is not a task duration bucket; "
            f"the nearest are {nearest} (all: {', '.join(bucket_text(b) for b in buckets)})"
        )
    return LatencyObjective(
        task_name, fmt_float(float(seconds)), bucket_text(seconds), objective_text(objective)
    )


def _typed(key: str, value: Any) -> Any:
    default = THRESHOLDS[key]
    if isinstance(default, bool) or isinstance(value, bool):
        raise ValueError(f"{key}: not a boolean")
    try:
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: expected a number, got {value!r}") from None
    return str(value)


@dataclass
class RuleConfig:
    """Everything a rule file is rendered from, each part defaulting to the shipped file."""

    thresholds: dict[str, Any] = field(default_factory=dict)
    objectives: dict[str, float] = field(default_factory=dict)
    latency: dict[str, LatencyObjective] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=lambda: list(DEFAULT_DISABLED))

    def set_threshold(self, key: str, value: Any) -> None:
        """Override one threshold, typed like its default; unknown keys are refused."""
        if key not in THRESHOLDS:
            raise ValueError(f"unknown threshold {key!r} (known: {', '.join(THRESHOLDS)})")
        self.thresholds[key] = _typed(key, value)

    def set_objective(self, task_name: str, objective: float) -> None:
        """The availability objective of one task name ("" sets the default)."""
        objective_text(objective)
        if task_name:
            self.objectives[task_name] = objective
        else:
            self.set_threshold("slo_objective", objective)

    def merged(self) -> dict[str, Any]:
        """Every threshold: the defaults with this config's overrides."""
        return {**THRESHOLDS, **self.thresholds}

    def set_slo_window(self, window: str) -> None:
        """A new SLO window, with the burn-rate factors scaled to spend the same budget shares.

        A factor is (share of the budget spent) x (SLO window) / (long window), so it scales
        with the window: 14.4 over 1h for 28d becomes 3.6 for 7d.
        """
        scale = duration_seconds(window) / duration_seconds(_FACTOR_WINDOW)
        self.set_threshold("slo_window", window)
        for key in SLO_THRESHOLDS:
            if key.endswith("_burn_rate"):
                self.thresholds[key] = float(f"{THRESHOLDS[key] * scale:.4g}")

    def update(self, doc: Any, source: str) -> None:
        """Apply a `prometheusRule`-shaped mapping (from a YAML file or the chart's values)."""
        if doc is None:
            return
        if not isinstance(doc, dict):
            raise ValueError(f"{source}: expected a mapping at the top")
        unknown = sorted(set(doc) - {"thresholds", "slo", "disabledAlerts"})
        if unknown:
            raise ValueError(f"{source}: unknown keys {', '.join(unknown)}")
        for key, value in (doc.get("thresholds") or {}).items():
            self.set_threshold(str(key), value)
        slo = doc.get("slo") or {}
        for name, objective in (slo.get("objectives") or {}).items():
            self.set_objective(str(name), float(objective))
        for name, spec in (slo.get("latency") or {}).items():
            if not isinstance(spec, dict) or set(spec) != {"threshold", "objective"}:
                raise ValueError(f"{source}: slo.latency.{name} needs threshold and objective")
            self.latency[str(name)] = latency_objective(
                str(name), str(spec["threshold"]), float(spec["objective"])
            )
        if "disabledAlerts" in doc:
            self.disabled = [str(name) for name in doc["disabledAlerts"] or []]
