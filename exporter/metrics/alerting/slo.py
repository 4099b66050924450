"""Service level objectives per task name: recording rules and multi-window burn-rate alerts.

Availability: good events are `taskEnd`, bad events `taskError`; aborted tasks count as neither.
Latency (opt-in per task name): finished tasks (ended or errored) no slower than a task duration
bucket. Objectives are data, not rule text: each override is a constant series
(`vector(0.999)` with `task_name` and `objective` labels) that the rules join on, so the number of
rules does not grow with the number of task names and a new objective adds one rule.

The alerts follow the SRE Workbook ("Alerting on SLOs"): two window pairs page (fast, slow) and
two open a ticket; each pair fires when the burn rate exceeds its factor over both its long and
its short window, and only when the long window holds at least `slo_min_events` finished tasks.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from exporter.metrics.alerting.rules import duration_seconds, sum_rates

__all__ = [
    "ALERT_PAIRS",
    "SLO_THRESHOLDS",
    "AlertPair",
    "LatencyObjective",
    "availability_objective_rule",
    "latency_objective_rule",
    "objective_text",
    "slo_groups",
]

# Every window, factor and `for` of the SLO alerts; the Helm chart and `requence-exporter rules`
# override them like the other thresholds. Factors are the Workbook's for a 28-day budget:
# 14.4 over 1h spends 2 % of it, 6 over 6h 5 %, 3 over 1d and 1 over 3d 10 % each.
SLO_THRESHOLDS: Final[dict[str, Any]] = {
    "slo_objective": 0.99,
    "slo_window": "28d",
    "slo_min_events": 20,
    "slo_page_fast_long_window": "1h",
    "slo_page_fast_short_window": "5m",
    "slo_page_fast_burn_rate": 14.4,
    "slo_page_fast_for": "2m",
    "slo_page_slow_long_window": "6h",
    "slo_page_slow_short_window": "30m",
    "slo_page_slow_burn_rate": 6.0,
    "slo_page_slow_for": "15m",
    "slo_ticket_fast_long_window": "1d",
    "slo_ticket_fast_short_window": "2h",
    "slo_ticket_fast_burn_rate": 3.0,
    "slo_ticket_fast_for": "1h",
    "slo_ticket_slow_long_window": "3d",
    "slo_ticket_slow_short_window": "6h",
    "slo_ticket_slow_burn_rate": 1.0,
    "slo_ticket_slow_for": "3h",
}


class AlertPair(NamedTuple):
    """One window pair of the burn-rate alerts: its threshold-key prefix and severity."""

    role: str  # page_fast, page_slow, ticket_fast, ticket_slow
    severity: str


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


_BY: Final = "job, task_name"
_ENDED: Final = "requence_tasks_ended_total"
_ERRORED: Final = "requence_tasks_errored_total"
_DURATION: Final = "requence_task_duration_seconds"
# Aborted tasks were cancelled from outside: they are neither good nor bad events.
_FINISHED: Final = 'outcome!="aborted"'
AVAILABILITY_OVERRIDE: Final = "task_name:requence_slo_availability_objective:override"
LATENCY_OVERRIDE: Final = "task_name:requence_slo_latency_objective:override"
AVAILABILITY_OBJECTIVE: Final = "task_name:requence_slo_availability_objective:ratio"
LATENCY_OBJECTIVE: Final = "task_name:requence_slo_latency_objective:ratio"


def objective_text(value: float) -> str:
    """An objective as its label and PromQL text: 0.999 -> "0.999" (no float noise)."""
    if not 0 < value < 1:
        raise ValueError(f"an objective is a fraction between 0 and 1 (0.99 = 99 %), not {value}")
    return f"{value:.10g}"


def availability_objective_rule(task_name: str, objective: str) -> dict[str, Any]:
    """The constant series that sets one task name's availability objective."""
    return {
        "record": AVAILABILITY_OVERRIDE,
        "expr": f"vector({objective})",
        "labels": {"task_name": task_name, "objective": objective},
    }


def latency_objective_rule(latency: LatencyObjective) -> dict[str, Any]:
    """The constant series that opts one task name into the latency SLO."""
    return {
        "record": LATENCY_OVERRIDE,
        "expr": f"vector({latency.objective})",
        "labels": {
            "task_name": latency.task_name,
            "le": latency.le,
            "threshold": latency.threshold,
            "objective": latency.objective,
        },
    }


def burn_rate(sli: str, role: str) -> str:
    """Name of the recorded burn rate of `sli` (error or latency) over the window `role`."""
    return f"task_name:requence_slo_{sli}_burn_rate:{role}"


def events(sli: str, role: str) -> str:
    """Name of the recorded count of finished tasks an SLI judged over the window `role`."""
    return f"task_name:requence_slo_{sli}_events:increase_{role}"


def _objective_rules(t: dict[str, Any], sel: str) -> list[dict[str, Any]]:
    seen = f"group by ({_BY}) ({_ENDED}{sel} or {_ERRORED}{sel})"
    default = t["slo_objective"]
    return [
        {
            "record": AVAILABILITY_OBJECTIVE,
            "expr": (
                f"{seen}\n  * on (task_name) group_left (objective)\n  {AVAILABILITY_OVERRIDE}\n"
                f'or on ({_BY})\nlabel_replace({seen}, "objective", "{default}", "", "") '
                f"* {default}"
            ),
        },
        {
            "record": LATENCY_OBJECTIVE,
            "expr": (
                f"group by ({_BY}) ({_DURATION}_count{sel})\n"
                f"  * on (task_name) group_left (objective, threshold, le)\n  {LATENCY_OVERRIDE}"
            ),
        },
    ]


def _and_matcher(selector: str, matcher: str) -> str:
    """`selector` (`{...}` or empty) with one more label matcher."""
    inner = selector[1:-1]
    return f"{{{inner + ', ' if inner else ''}{matcher}}}"


def _window_rules(role: str, window: str, sel: str, *, volume: bool) -> list[dict[str, Any]]:
    finished = sum_rates((_ENDED, _ERRORED), _BY, window, sel, function="increase")
    errors = (
        f"sum by ({_BY}) (\n  increase({_ERRORED}{sel}[{window}])\n"
        f"  or 0 * increase({_ENDED}{sel}[{window}])\n)"
    )
    judged = f"{_DURATION}_count{_and_matcher(sel, _FINISHED)}"
    bucket = f"{_DURATION}_bucket{_and_matcher(sel, _FINISHED)}"
    latency_total = (
        f"sum by ({_BY}) (increase({judged}[{window}]))\n  and on ({_BY}) {LATENCY_OBJECTIVE}"
    )
    fast = (
        f"sum by ({_BY}) (\n  increase({bucket}[{window}])\n"
        f"  and on (task_name, le) {LATENCY_OVERRIDE}\n)"
    )
    rules = [
        {
            "record": burn_rate("error", role),
            "expr": (
                f"(\n{errors}\n  / on ({_BY})\n({finished} > 0)\n)\n"
                f"/ on ({_BY}) group_left (objective)\n(1 - {AVAILABILITY_OBJECTIVE})"
            ),
        },
        {
            "record": burn_rate("latency", role),
            "expr": (
                f"(\n  1 - {fast}\n  / on ({_BY})\n  ({latency_total} > 0)\n)\n"
                f"/ on ({_BY}) group_left (objective, threshold)\n(1 - {LATENCY_OBJECTIVE})"
            ),
        },
    ]
    if volume:
        rules.append({"record": events("error", role), "expr": finished})
        rules.append({"record": events("latency", role), "expr": latency_total})
    return rules


def _budget_rules() -> list[dict[str, Any]]:
    return [
        {
            "record": f"task_name:requence_slo_{sli}_budget:remaining",
            "expr": f"1 - {burn_rate(sli, 'window')}",
        }
        for sli in ("error", "latency")
    ]


_ALERTS: Final = {
    "error": (
        "RequenceTaskErrorBudgetBurn",
        "error",
        "availability",
        "ended with taskError",
    ),
    "latency": (
        "RequenceTaskLatencyBudgetBurn",
        "latency",
        "latency",
        "took longer than {{ $labels.threshold }}",
    ),
}


def _number(value: object) -> str:
    """A factor as Go's templates print it (6.0 -> 6), so the chart renders the same text."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _budget_left(sli: str) -> str:
    # The remaining budget comes from another series: a query in the annotation fetches it.
    query = (
        f'printf "task_name:requence_slo_{sli}_budget:remaining{{job=%q, task_name=%q}}" '
        "$labels.job $labels.task_name"
    )
    return (
        f"{{{{ with {query} | query }}}}{{{{ . | first | value | humanizePercentage }}}}"
        "{{ else }}unknown{{ end }}"
    )


def _alert_rules(t: dict[str, Any], runbook_base: str) -> list[dict[str, Any]]:
    rules = []
    for sli, (name, what, slo, bad) in _ALERTS.items():
        for pair in ALERT_PAIRS:
            long_w = t[f"slo_{pair.role}_long_window"]
            short_w = t[f"slo_{pair.role}_short_window"]
            factor = _number(t[f"slo_{pair.role}_burn_rate"])
            rules.append(
                {
                    "alert": name,
                    "expr": (
                        f"{burn_rate(sli, pair.role + '_long')} > {factor}\n"
                        f"and on ({_BY})\n{burn_rate(sli, pair.role + '_short')} > {factor}\n"
                        f"and on ({_BY})\n{events(sli, pair.role + '_long')} "
                        f">= {t['slo_min_events']}"
                    ),
                    "for": str(t[f"slo_{pair.role}_for"]),
                    "labels": {
                        "severity": pair.severity,
                        "slo": slo,
                        "long_window": str(long_w),
                        "short_window": str(short_w),
                        "burn_rate_threshold": str(factor),
                    },
                    "annotations": {
                        "summary": (
                            f"Requence task {{{{ $labels.task_name }}}} burns its {what} budget "
                            '{{ $value | printf "%.1f" }} times too fast'
                        ),
                        "description": (
                            "Over the last "
                            f"{long_w} (and {short_w}) so many {{{{ $labels.task_name }}}} "
                            f"tasks (job {{{{ $labels.job }}}}) {bad} that the error budget of "
                            "the objective {{ $labels.objective }} over "
                            f'{t["slo_window"]} burns {{{{ $value | printf "%.1f" }}}} times '
                            f"faster than it lasts (threshold {factor}); budget left: "
                            f"{_budget_left(sli)}."
                        ),
                        "runbook_url": f"{runbook_base}#{name.lower()}",
                    },
                }
            )
    return rules


def slo_groups(
    t: dict[str, Any],
    selector: str,
    availability: list[dict[str, Any]],
    latency: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The SLO rule groups for thresholds `t`, raw series `selector` and objective rules."""
    for key in ("slo_window", *(f"slo_{p.role}_long_window" for p in ALERT_PAIRS)):
        if not str(t[key]).startswith("@@"):  # chart placeholders are checked by Helm
            duration_seconds(str(t[key]))
    recording: list[dict[str, Any]] = [*availability, *latency, *_objective_rules(t, selector)]
    for pair in ALERT_PAIRS:
        for side in ("long", "short"):
            window = str(t[f"slo_{pair.role}_{side}_window"])
            recording += _window_rules(
                f"{pair.role}_{side}", window, selector, volume=side == "long"
            )
    recording += _window_rules("window", str(t["slo_window"]), selector, volume=False)
    recording += _budget_rules()
    # One group: Prometheus evaluates a group's rules in order, so the alerts (and the budget
    # left their annotations query) always see this evaluation's burn rates.
    alerts = _alert_rules(t, t["runbook_base_url"])
    return [{"name": "requence-exporter.slo", "rules": [*recording, *alerts]}]
