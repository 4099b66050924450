"""The SLO alerts (burn-rate pairs, quiet task names) and the parameter series the dashboard
reads, written with the recorded series of `slo`."""

from __future__ import annotations

from typing import Any, Final

from exporter.metrics.alerting.rules import BY_TASK, go_number, seconds_text
from exporter.metrics.alerting.slo import (
    ALERT_PAIRS,
    AVAILABILITY_OBJECTIVE,
    AlertPair,
    bad,
    burn_rate,
    events,
)

__all__ = ["burn_alert", "parameter_rules", "quiet_alert"]

_BY: Final = BY_TASK


_ALERTS: Final = {
    "error": ("RequenceTaskErrorBudgetBurn", "error", "availability", "ended with taskError"),
    "latency": (
        "RequenceTaskLatencyBudgetBurn",
        "latency",
        "latency",
        "took longer than {{ $labels.threshold }}",
    ),
}
_JOB_TEXT: Final = "(job {{ $labels.job }}{{ with $labels.namespace }}, namespace {{ . }}{{ end }})"


def _number(value: object) -> str:
    """A factor as Go's templates print it (6.0 -> 6), so the chart renders the same text."""
    return go_number(value) if isinstance(value, int | float) else str(value)


def _budget_left(sli: str) -> str:
    # The remaining budget comes from another series: a query in the annotation fetches it.
    query = (
        f'printf "task_name:requence_slo_{sli}_budget:remaining{{cluster=%q, namespace=%q, '
        'job=%q, task_name=%q}" $labels.cluster $labels.namespace $labels.job $labels.task_name'
    )
    return (
        f"{{{{ with {query} | query }}}}{{{{ . | first | value | humanizePercentage }}}}"
        "{{ else }}unknown{{ end }}"
    )


def burn_alert(t: dict[str, Any], sli: str, pair: AlertPair, rec: str) -> dict[str, Any]:
    """The burn-rate alert of `sli` over the window pair `pair` (`rec`: the recorded series'
    selector)."""
    name, what, slo, how = _ALERTS[sli]
    long_w = t[f"slo_{pair.role}_long_window"]
    short_w = t[f"slo_{pair.role}_short_window"]
    factor = _number(t[f"slo_{pair.role}_burn_rate"])
    return {
        "alert": name,
        "expr": (
            f"{burn_rate(sli, pair.role + '_long')}{rec} > {factor}\n"
            f"and on ({_BY})\n{burn_rate(sli, pair.role + '_short')}{rec} > {factor}\n"
            f"and on ({_BY})\n{events(sli, pair.role + '_long')}{rec} >= {t['slo_min_events']}"
        ),
        "for": str(t[f"slo_{pair.role}_for"]),
        "keep_firing_for": str(t[f"slo_{pair.role}_keep_firing_for"]),
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
                f"Over the last {long_w} (and {short_w}) so many {{{{ $labels.task_name }}}} "
                f"tasks {_JOB_TEXT} {how} that the error budget of the objective "
                f"{{{{ $labels.objective }}}} over {t['slo_window']} burns "
                f'{{{{ $value | printf "%.1f" }}}} times faster than it lasts (threshold '
                f"{factor}); budget left: {_budget_left(sli)}."
            ),
            "runbook_url": f"{t['runbook_base_url']}#{name.lower()}",
        },
    }


def quiet_alert(t: dict[str, Any], rec: str) -> dict[str, Any]:
    """Failures of a task name too quiet for the burn-rate pages: a ticket, early."""
    factor = _number(t["slo_ticket_fast_burn_rate"])
    long_w = t["slo_ticket_fast_long_window"]
    name = "RequenceTaskQuietFailures"
    return {
        "alert": name,
        "expr": (
            f"{bad('error', 'ticket_fast_long')}{rec} >= {t['slo_quiet_min_errors']}\n"
            f"and on ({_BY})\n{burn_rate('error', 'ticket_fast_long')}{rec} > {factor}\n"
            f"and on ({_BY})\n{burn_rate('error', 'ticket_fast_short')}{rec} > {factor}\n"
            f"unless on ({_BY})\n{events('error', 'page_fast_long')}{rec} >= "
            f"{t['slo_min_events']}"
        ),
        "for": str(t["slo_quiet_for"]),
        "labels": {"severity": "warning", "slo": "availability"},
        "annotations": {
            "summary": (
                "Requence task {{ $labels.task_name }} failed about "
                '{{ $value | printf "%.0f" }} times, too few runs to page'
            ),
            "description": (
                f'About {{{{ $value | printf "%.0f" }}}} {{{{ $labels.task_name }}}} tasks '
                f"{_JOB_TEXT} ended with "
                f"taskError in the last {long_w}, more than {factor} times its error budget "
                f"allows there and in the last {t['slo_ticket_fast_short_window']}, but fewer "
                f"than {t['slo_min_events']} of its tasks finished in the last "
                f"{t['slo_page_fast_long_window']}, too few for the burn-rate pages."
            ),
            "runbook_url": f"{t['runbook_base_url']}#{name.lower()}",
        },
    }


def parameter_rules(t: dict[str, Any], rec: str) -> list[dict[str, Any]]:
    """The SLO parameters as series per job, for the dashboard: it shows what the rules use."""
    jobs = f"group by (cluster, namespace, job) ({AVAILABILITY_OBJECTIVE}{rec})"
    rules: list[dict[str, Any]] = [
        {
            "record": "job:requence_slo_burn_rate_threshold:constant",
            "expr": f"{jobs} * {_number(t[f'slo_{pair.role}_burn_rate'])}",
            "labels": {
                "pair": pair.role,
                "severity": pair.severity,
                "long_window": str(t[f"slo_{pair.role}_long_window"]),
                "short_window": str(t[f"slo_{pair.role}_short_window"]),
            },
        }
        for pair in ALERT_PAIRS
    ]
    rules.append(
        {
            "record": "job:requence_slo_min_events:constant",
            "expr": f"{jobs} * {t['slo_min_events']}",
        }
    )
    rules.append(
        {
            "record": "job:requence_slo_window:seconds",
            "expr": f"{jobs} * {seconds_text(t, 'slo_window')}",
            "labels": {"slo_window": str(t["slo_window"])},
        }
    )
    return rules
