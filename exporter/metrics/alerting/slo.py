"""Service level objectives per task name: recording rules and multi-window burn-rate alerts.

Availability: good events are `taskEnd`, bad events `taskError`; aborted tasks count as neither.
Latency (opt-in per task name): finished tasks (ended or errored) no slower than a task duration
bucket. Objectives are data, not rule text: each override is a constant series
(`vector(0.999)` with `task_name` and `objective` labels) that the rules join on.

Cost. Raw counters are read once, over the fast page's short window (5m): the base rates per
task name (latency ones only for the names with a latency objective, whose bucket is selected by
name). Every longer window sums those recorded base rates (`sum_over_time(...) * interval`), so
an evaluation reads a few points per task name and window, never weeks of raw samples. The
pages and their windows run in `requence-exporter.slo` every `slo_interval`, the tickets in
`requence-exporter.slo-long` every `slo_long_interval`, and the SLO window's sums and the budgets
(the costliest reads, and slow to change) in `requence-exporter.slo-window` every
`slo_window_interval`.

Rollouts. Which task names have an objective comes from the recorded history (the SLO window's
sums exist while a name has any point within the window), not from live counters: a quiet name's
budget, tickets and dashboard row outlive the pod that counted it.

The alerts follow the SRE Workbook ("Alerting on SLOs"): two window pairs page and two open a
ticket; each pair fires when the burn rate exceeds its factor over both its long and its short
window, and only when the long window holds at least `slo_min_events` finished tasks.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from exporter.metrics.alerting.rules import (
    BY_TASK,
    Selectors,
    promql_string,
    seconds_text,
    sum_rates,
)

__all__ = [
    "ALERT_PAIRS",
    "SLO_THRESHOLDS",
    "AlertPair",
    "LatencyObjective",
    "availability_objective_rule",
    "bad",
    "burn_rate",
    "events",
    "latency_objective_rules",
    "objective_text",
    "slo_groups",
]

# Every window, factor, `for` and interval of the SLO alerts; the Helm chart and `requence-exporter
# rules` override them like the other thresholds. Factors are the Workbook's for a 28-day budget;
# with another slo_window they scale by window / 28d unless set themselves (objectives.py).
SLO_THRESHOLDS: Final[dict[str, Any]] = {
    "slo_objective": 0.99,
    "slo_window": "28d",
    "slo_min_events": 20,
    # How often the recording rules, the exporter's alerts, the base rates and the pages are
    # evaluated (longer windows are sums of the base rates recorded this often), and the tickets.
    "slo_interval": "1m",
    "slo_long_interval": "5m",
    # The SLO window's sums and the budgets: the costliest reads, and slow to change.
    "slo_window_interval": "30m",
    # The fast page's short window is the base window every longer window is summed from.
    "slo_page_fast_long_window": "1h",
    "slo_page_fast_short_window": "5m",
    "slo_page_fast_burn_rate": 14.4,
    "slo_page_fast_for": "2m",
    "slo_page_fast_keep_firing_for": "15m",
    "slo_page_slow_long_window": "6h",
    "slo_page_slow_short_window": "30m",
    "slo_page_slow_burn_rate": 6.0,
    "slo_page_slow_for": "15m",
    "slo_page_slow_keep_firing_for": "15m",
    "slo_ticket_fast_long_window": "1d",
    "slo_ticket_fast_short_window": "2h",
    "slo_ticket_fast_burn_rate": 3.0,
    "slo_ticket_fast_for": "1h",
    "slo_ticket_fast_keep_firing_for": "30m",
    "slo_ticket_slow_long_window": "3d",
    "slo_ticket_slow_short_window": "6h",
    "slo_ticket_slow_burn_rate": 1.0,
    "slo_ticket_slow_for": "3h",
    "slo_ticket_slow_keep_firing_for": "30m",
    # RequenceTaskQuietFailures: a task name too quiet to page (fewer than slo_min_events in the
    # fast page's long window) with at least this many errors in the fast ticket's long window.
    "slo_quiet_min_errors": 3,
    "slo_quiet_for": "15m",
}


class AlertPair(NamedTuple):
    """One window pair of the burn-rate alerts: its threshold-key prefix and severity."""

    role: str  # page_fast, page_slow, ticket_fast, ticket_slow
    severity: str

    @property
    def fast_group(self) -> bool:
        """Pages are evaluated every slo_interval, tickets every slo_long_interval."""
        return self.severity == "critical"


ALERT_PAIRS: Final = (
    AlertPair("page_fast", "critical"),
    AlertPair("page_slow", "critical"),
    AlertPair("ticket_fast", "warning"),
    AlertPair("ticket_slow", "warning"),
)


class LatencyObjective(NamedTuple):
    """Opt-in latency SLO: share `objective` of a task name's finished tasks within `le`."""

    task_name: str
    le: str  # the bucket bound as the exporter writes it, e.g. "2.5"
    threshold: str  # the same bound as a duration, e.g. "2.5s", for people
    objective: str  # e.g. "0.95"


_BY: Final = BY_TASK
_ENDED: Final = "requence_tasks_ended_total"
_ERRORED: Final = "requence_tasks_errored_total"
_DURATION: Final = "requence_task_duration_seconds"
AVAILABILITY_OVERRIDE: Final = "task_name:requence_slo_availability_objective:override"
LATENCY_OVERRIDE: Final = "task_name:requence_slo_latency_objective:override"
AVAILABILITY_OBJECTIVE: Final = "task_name:requence_slo_availability_objective:ratio"
LATENCY_OBJECTIVE: Final = "task_name:requence_slo_latency_objective:ratio"
_OBJECTIVES: Final = {"error": AVAILABILITY_OBJECTIVE, "latency": LATENCY_OBJECTIVE}
# The SLO window's sums are recorded every slo_window_interval (at most 1h); this reaches
# back further.
_KNOWN_LOOKBACK: Final = "2h"


def objective_text(value: float) -> str:
    """An objective as its label and PromQL text: 0.999 -> "0.999" (no float noise)."""
    if not 0 < value < 1:
        raise ValueError(f"an objective is a fraction between 0 and 1 (0.99 = 99 %), not {value}")
    return f"{value:.10g}"


def availability_objective_rule(task_name: str, objective: str, s: Selectors) -> dict[str, Any]:
    """The constant series that sets one task name's availability objective."""
    return {
        "record": AVAILABILITY_OVERRIDE,
        "expr": f"vector({objective})",
        "labels": {**s.labels, "task_name": task_name, "objective": objective},
    }


def latency_objective_rules(
    latency: LatencyObjective, t: dict[str, Any], s: Selectors
) -> list[Any]:
    """One latency SLO: its constant objective series and its two base rates, which select the
    task name's own duration series (and one bucket) only."""
    window, sel = t["slo_page_fast_short_window"], s.raw
    name = promql_string(latency.task_name)
    finished = _and_matcher(sel, f'task_name={name}, outcome!="aborted"')
    fast = _and_matcher(finished, f"le={promql_string(latency.le)}")
    events = base_rate("latency", "events")
    return [
        {
            "record": LATENCY_OVERRIDE,
            "expr": f"vector({latency.objective})",
            "labels": {
                **s.labels,
                "task_name": latency.task_name,
                "le": latency.le,
                "threshold": latency.threshold,
                "objective": latency.objective,
            },
        },
        {
            "record": events,
            "expr": f"sum by ({_BY}) (rate({_DURATION}_count{finished}[{window}]))",
        },
        {
            "record": base_rate("latency", "bad"),
            "expr": (
                f"{events}{_and_matcher(sel, f'task_name={name}')} - on ({_BY}) "
                f"sum by ({_BY}) (rate({_DURATION}_bucket{fast}[{window}]))"
            ),
        },
    ]


def burn_rate(sli: str, role: str) -> str:
    """Name of the recorded burn rate of `sli` (error or latency) over the window `role`."""
    return f"task_name:requence_slo_{sli}_burn_rate:{role}"


def events(sli: str, role: str) -> str:
    """Name of the recorded count of finished tasks an SLI judged over the window `role`."""
    return f"task_name:requence_slo_{sli}_events:increase_{role}"


def bad(sli: str, role: str) -> str:
    """Name of the recorded count of bad events (errors, slow tasks) over the window `role`."""
    return f"task_name:requence_slo_{sli}_bad:increase_{role}"


def base_rate(sli: str, kind: str) -> str:
    """Name of a base rate (`events` or `bad` per second over the fast page's short window)."""
    return f"task_name:requence_slo_{sli}_{kind}:rate_base"


def _and_matcher(selector: str, matcher: str) -> str:
    """`selector` (`{...}` or empty) with one more label matcher."""
    inner = selector[1:-1]
    return f"{{{inner + ', ' if inner else ''}{matcher}}}"


def _base_rules(t: dict[str, Any], sel: str) -> list[dict[str, Any]]:
    window = t["slo_page_fast_short_window"]
    return [
        {
            "record": base_rate("error", "events"),
            "expr": sum_rates((_ENDED, _ERRORED), _BY, window, sel),
        },
        {
            "record": base_rate("error", "bad"),
            "expr": (
                f"sum by ({_BY}) (\n  rate({_ERRORED}{sel}[{window}])\n"
                f"  or 0 * rate({_ENDED}{sel}[{window}])\n)"
            ),
        },
    ]


def _objective_rules(t: dict[str, Any], latency: bool, rec: str) -> list[dict[str, Any]]:
    """The objective in force per task name that has a base rate now or a sum over the SLO
    window (so it outlives the counters of a replaced pod)."""

    def known(sli: str) -> str:
        return (
            f"group by ({_BY}) (\n  {base_rate(sli, 'events')}{rec}\n  or last_over_time("
            f"{events(sli, 'window')}{rec}[{_KNOWN_LOOKBACK}])\n)"
        )

    default = t["slo_objective"]
    rules = [
        {
            "record": AVAILABILITY_OBJECTIVE,
            "expr": (
                f"{known('error')}\n  * on (task_name) group_left (objective)\n  "
                f"{AVAILABILITY_OVERRIDE}{rec}\nor on ({_BY})\n"
                f'label_replace({known("error")}, "objective", "{default}", "", "") * {default}'
            ),
        }
    ]
    if latency:
        rules.append(
            {
                "record": LATENCY_OBJECTIVE,
                "expr": (
                    f"{known('latency')}\n  * on (task_name) group_left "
                    f"(objective, threshold, le)\n  {LATENCY_OVERRIDE}{rec}"
                ),
            }
        )
    return rules


def _window_rules(
    t: dict[str, Any], sli: str, role: str, window: str, rec: str
) -> list[dict[str, Any]]:
    """Counts over `window` from the base rates, and the burn rate they give. The base window
    is the base rate itself; a longer one sums the rates recorded every slo_interval."""
    interval = seconds_text(t, "slo_interval")
    base = seconds_text(t, "slo_page_fast_short_window")
    labels = "objective" if sli == "error" else "objective, threshold"

    def count(kind: str) -> str:
        if role == "page_fast_short":
            return f"{base_rate(sli, kind)}{rec} * {base}"
        return f"sum_over_time({base_rate(sli, kind)}{rec}[{window}]) * {interval}"

    return [
        *(
            {"record": name(sli, role), "expr": count(kind)}
            for name, kind in ((events, "events"), (bad, "bad"))
        ),
        {
            "record": burn_rate(sli, role),
            "expr": (
                f"{bad(sli, role)}{rec}\n  / on ({_BY})\n({events(sli, role)}{rec} > 0)\n"
                f"/ on ({_BY}) group_left ({labels})\n(1 - {_OBJECTIVES[sli]}{rec})"
            ),
        },
    ]


def _budget_rules(slis: tuple[str, ...], rec: str) -> list[dict[str, Any]]:
    return [
        {
            "record": f"task_name:requence_slo_{sli}_budget:remaining",
            "expr": f"1 - {burn_rate(sli, 'window')}{rec}",
        }
        for sli in slis
    ]


def slo_groups(
    t: dict[str, Any],
    s: Selectors,
    availability: list[dict[str, Any]],
    latency: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The SLO rule groups for thresholds `t`, selectors `s` and objective rules
    (`latency`: the rules of `latency_objective_rules`, empty without a latency SLO)."""
    slis = ("error", "latency") if latency else ("error",)
    # Prometheus evaluates a group's rules in order: base rates, then the objectives every burn
    # rate joins on, then the windows, so each alert sees this evaluation's burn rates. The
    # latency rules of each kind stay together (the chart renders them only with latency SLOs).
    rec = s.recorded
    objectives = _objective_rules(t, bool(latency), rec)
    fast: list[dict[str, Any]] = [
        *availability,
        *_base_rules(t, s.raw),
        objectives[0],
        *latency,
        *objectives[1:],
    ]
    slow: list[dict[str, Any]] = []
    budget: list[dict[str, Any]] = []
    for sli in slis:
        for pair in ALERT_PAIRS:
            for side in ("long", "short"):
                window = str(t[f"slo_{pair.role}_{side}_window"])
                target = fast if pair.fast_group else slow
                target += _window_rules(t, sli, f"{pair.role}_{side}", window, rec)
        budget += _window_rules(t, sli, "window", str(t["slo_window"]), rec)
    budget += _budget_rules(slis, rec)
    # Imported here: the alerts are written with this module's names.
    from exporter.metrics.alerting.slo_alerts import burn_alert, parameter_rules, quiet_alert

    fast += parameter_rules(t, rec)
    fast += [burn_alert(t, sli, p, rec) for sli in slis for p in ALERT_PAIRS if p.fast_group]
    slow.append(quiet_alert(t, rec))
    slow += [burn_alert(t, sli, p, rec) for sli in slis for p in ALERT_PAIRS if not p.fast_group]
    return [
        {"name": "requence-exporter.slo", "interval": str(t["slo_interval"]), "rules": fast},
        {
            "name": "requence-exporter.slo-long",
            "interval": str(t["slo_long_interval"]),
            "rules": slow,
        },
        {
            "name": "requence-exporter.slo-window",
            "interval": str(t["slo_window_interval"]),
            "rules": budget,
        },
    ]
