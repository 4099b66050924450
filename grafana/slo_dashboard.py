"""The "Requence / SLOs" dashboard: objectives per task name, budgets, burn rates, alerts.

Every query reads the SLO recording rules of `exporter/metrics/alerting/slo.py`, so the dashboard
shows what the alerts judge. Nothing of the rules' configuration is copied in: the windows,
factors, SLO window and volume guard come from the parameter series the rules record per job
(`job:requence_slo_*`), and the "Alert" column from Prometheus's own `ALERTS` series, so a chart
or `requence-exporter rules` that changes them changes the dashboard too.
"""

from __future__ import annotations

from typing import Any, Final

from exporter.metrics.alerting.rules import BY_JOB, BY_TASK
from exporter.metrics.alerting.slo import burn_rate, events
from grafana.board import CHART_THIRD, EXPORTER, TABLE, TASKS, Board, dashboard
from grafana.panels import PROMETHEUS, target, timeseries

__all__ = ["slo_dashboard"]

SEL: Final = TASKS
BY: Final = f"max by ({BY_TASK})"
THRESHOLD: Final = "job:requence_slo_burn_rate_threshold:constant"
GUARD: Final = f"job:requence_slo_min_events:constant{{{EXPORTER}}}"
WINDOW: Final = f"job:requence_slo_window:seconds{{{EXPORTER}}}"
# Grafana opens the Tasks dashboard for the row's release and task name (the chart rewrites the
# uid for per-release dashboards).
TASKS_LINK: Final = {
    "targetBlank": False,
    "title": "Requence / Tasks for ${__data.fields.task_name}",
    "url": "/d/requence-tasks/requence-tasks?var-cluster=${__data.fields.cluster}"
    "&var-namespace=${__data.fields.namespace}&var-job=${__data.fields.job}"
    "&var-task_name=${__data.fields.task_name}&${__url_time_range}",
}
_ALERT_MAPPINGS: Final = [
    {
        "type": "value",
        "options": {
            "0": {"text": "none", "color": "green", "index": 0},
            "1": {"text": "ticket (warning)", "color": "orange", "index": 1},
            "2": {"text": "page (critical)", "color": "red", "index": 2},
        },
    }
]
_GUARD_MAPPINGS: Final = [
    {
        "type": "value",
        "options": {
            "0": {"text": "no: below the volume guard", "color": "orange", "index": 0},
            "1": {"text": "yes", "color": "green", "index": 1},
        },
    }
]
_MAPPINGS: Final = {"Alert": _ALERT_MAPPINGS, "Can page": _GUARD_MAPPINGS}
_ALERT_NAMES: Final = {
    "error": "RequenceTaskErrorBudgetBurn|RequenceTaskQuietFailures",
    "latency": "RequenceTaskLatencyBudgetBurn",
}


def _series(sli: str, role: str) -> str:
    return f"{burn_rate(sli, role)}{{{SEL}}}"


def _alert_level(sli: str) -> str:
    """2 while a page of the SLI fires for the task name, 1 for a ticket, else 0: Prometheus's
    own ALERTS series, so the volume guard, `for` and keep_firing_for are all in it."""
    alerts = f'ALERTS{{alertstate="firing", alertname=~"{_ALERT_NAMES[sli]}", {SEL}'
    return (
        f'max by ({BY_TASK}) (\n  {alerts}, severity="critical"}} * 2\n'
        f'  or {alerts}, severity="warning"}}\n'
        f"  or {_series(sli, 'page_fast_long')} * 0\n)"
    )


def _can_page(sli: str) -> str:
    """1 where a paging pair's long window holds enough finished tasks (the guard), else 0."""
    return (
        f"{BY} (\n  {events(sli, 'page_fast_long')}{{{SEL}}}\n"
        f"  >= bool on ({BY_JOB}) group_left () {GUARD}\n"
        f"  or {events(sli, 'page_slow_long')}{{{SEL}}}\n"
        f"  >= bool on ({BY_JOB}) group_left () {GUARD}\n)"
    )


def _table(title: str, description: str, columns: list[tuple[str, str, str]]) -> dict[str, Any]:
    """One row per job and task name, a column per instant query, worst budget first."""
    targets = [
        {**target(expr, name, instant=True, fmt="table"), "refId": chr(ord("A") + i)}
        for i, (name, expr, _unit) in enumerate(columns)
    ]
    rename = {
        f"Value #{t['refId']}": name for t, (name, _e, _u) in zip(targets, columns, strict=True)
    }
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "unit", "value": unit}]
            + ([{"id": "mappings", "value": _MAPPINGS[name]}] if name in _MAPPINGS else [])
            + (
                [{"id": "custom.cellOptions", "value": {"type": "color-text"}}]
                if name in _MAPPINGS
                else []
            ),
        }
        for name, _expr, unit in columns
    ]
    overrides.append(
        {
            "matcher": {"id": "byName", "options": "task_name"},
            "properties": [{"id": "links", "value": [TASKS_LINK]}],
        }
    )
    return {
        "datasource": PROMETHEUS,
        "description": description,
        "fieldConfig": {"defaults": {"unit": "none", "links": []}, "overrides": overrides},
        "options": {"showHeader": True, "sortBy": [{"displayName": "Budget left", "desc": False}]},
        "targets": targets,
        "title": title,
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "objective": True},
                    "renameByName": rename,
                },
            },
        ],
        "type": "table",
    }


def _columns(sli: str) -> list[tuple[str, str, str]]:
    remaining = f"task_name:requence_slo_{sli}_budget:remaining{{{SEL}}}"
    objective = f"task_name:requence_slo_{'availability' if sli == 'error' else 'latency'}"
    return [
        ("Budget left", f"{BY} ({remaining})", "percentunit"),
        (
            "SLI",
            f"{BY} (1 - {_series(sli, 'window')} * on ({BY_TASK}) group_left () "
            f"(1 - {objective}_objective:ratio))",
            "percentunit",
        ),
        ("Objective", f"{BY} ({objective}_objective:ratio{{{SEL}}})", "percentunit"),
        ("Burn rate, fast page window", f"{BY} ({_series(sli, 'page_fast_long')})", "none"),
        ("Burn rate, slow page window", f"{BY} ({_series(sli, 'page_slow_long')})", "none"),
        (
            "Budget runs out in",
            f"{BY} (clamp_min({remaining}, 0)\n  * on ({BY_JOB}) group_left () {WINDOW}\n"
            f"  / on ({BY_TASK}) ({_series(sli, 'page_fast_long')} > 0))",
            "s",
        ),
        (
            "Finished, fast page window",
            f"{BY} (round({events(sli, 'page_fast_long')}{{{SEL}}}))",
            "short",
        ),
        ("Can page", _can_page(sli), "none"),
        ("Alert", _alert_level(sli), "none"),
    ]


def _burn_panel(sli: str, role: str, what: str, variable: str) -> dict[str, Any]:
    return timeseries(
        f"{what} burn rate over ${{{variable}}}",
        f"How many times faster than the objective allows the {what.lower()} budget burns, "
        f"over the long window of the {role.replace('_', ' ')} pair; 1 spends the budget "
        "exactly over the SLO window. The dashed line is the pair's factor as the rules record "
        "it (job:requence_slo_burn_rate_threshold:constant): the page fires above it when the "
        "short window agrees and enough tasks finished.",
        [
            target(f"{BY} ({_series(sli, role + '_long')})", "{{task_name}}"),
            target(
                f'max by ({BY_JOB}) ({THRESHOLD}{{{EXPORTER}, pair="{role}"}})',
                "threshold ({{job}})",
            ),
        ],
        "none",
    )


def _budget_panel(sli: str, what: str) -> dict[str, Any]:
    return timeseries(
        f"{what} budget left over ${{slo_window}}",
        f"Share of the {what.lower()} budget of the SLO window not yet spent; "
        "below 0 the objective is missed.",
        [
            target(
                f"{BY} (task_name:requence_slo_{sli}_budget:remaining{{{SEL}}})",
                "{{task_name}}",
            )
        ],
        "percentunit",
    )


def _window_variable(name: str, metric: str, label: str) -> dict[str, Any]:
    """A hidden variable holding a window as the rules record it, for titles."""
    query = f"label_values({metric}, {label})"
    return {
        "current": {},
        "datasource": PROMETHEUS,
        "definition": query,
        "hide": 2,
        "includeAll": False,
        "label": name,
        "multi": False,
        "name": name,
        "options": [],
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "sort": 0,
        "type": "query",
    }


def slo_dashboard() -> dict[str, Any]:
    """ "Requence / SLOs": per task name SLI, budget left, burn rates, exhaustion, alert."""
    b = Board()
    for sli, what, description in (
        (
            "error",
            "Error",
            "Availability per task name over the SLO window: the share of finished tasks "
            "that ended rather than errored (aborted tasks count as neither).",
        ),
        (
            "latency",
            "Latency",
            "Latency SLOs (opt-in per task name): the share of finished tasks no slower "
            "than the task name's threshold.",
        ),
    ):
        b.row("Availability" if sli == "error" else "Latency")
        b.add(
            _table(
                f"{what} SLOs, worst budget first",
                f"{description} Budget left, the burn rates now, when the budget runs out at "
                "the fast page's rate, how many tasks finished in the fast page's window, "
                "whether that is enough to page (the volume guard, slo_min_events; a quieter "
                "name gets RequenceTaskQuietFailures tickets instead), and which alert fires "
                "now. Click a task name for its Tasks dashboard.",
                _columns(sli),
            ),
            TABLE,
        )
        b.add(_burn_panel(sli, "page_fast", what, "page_fast_window"), CHART_THIRD)
        b.add(_burn_panel(sli, "page_slow", what, "page_slow_window"), CHART_THIRD)
        b.add(_budget_panel(sli, what), CHART_THIRD)
    return dashboard(
        "requence-slos",
        "Requence / SLOs",
        "Service level objectives per Requence task name: availability and opt-in latency, "
        "error budgets and multi-window burn rates, as the SLO alerts judge them.",
        b,
        variables=(
            *(
                _window_variable(
                    f"{role}_window",
                    f'{THRESHOLD}{{{EXPORTER}, pair="{role}"}}',
                    "long_window",
                )
                for role in ("page_fast", "page_slow")
            ),
            _window_variable("slo_window", WINDOW, "slo_window"),
        ),
    )
