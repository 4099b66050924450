"""The "Requence / SLOs" dashboard: objectives per task name, budgets, burn rates, alerts.

Every query reads the SLO recording rules of `exporter/metrics/alerting/slo.py`, so the dashboard
shows what the alerts judge. The windows and factors written into titles and the "Alert" column are
the defaults (`SLO_THRESHOLDS`).
"""

from __future__ import annotations

from typing import Any, Final

from exporter.metrics.alerting.rules import duration_seconds
from exporter.metrics.alerting.slo import ALERT_PAIRS, SLO_THRESHOLDS, burn_rate
from grafana.dashboards import _dashboard
from grafana.panels import PROMETHEUS, Board, target, timeseries

__all__ = ["slo_dashboard"]

SEL: Final = 'job=~"$job", task_name=~"$task_name"'
T = SLO_THRESHOLDS
WINDOW_S: Final = duration_seconds(str(T["slo_window"]))
# Grafana opens the Tasks dashboard for the row's job and task name.
TASKS_LINK: Final = {
    "targetBlank": False,
    "title": "Requence / Tasks for ${__data.fields.task_name}",
    "url": "/d/requence-tasks/requence-tasks?var-job=${__data.fields.job}"
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


def _series(sli: str, role: str) -> str:
    return f"{burn_rate(sli, role)}{{{SEL}}}"


def _alert_level(sli: str) -> str:
    """2 where a page's condition holds, 1 for a ticket, else 0: the alert that would fire."""
    parts = []
    for pair in ALERT_PAIRS:
        factor = T[f"slo_{pair.role}_burn_rate"]
        level = 2 if pair.severity == "critical" else 1
        parts.append(
            f"({_series(sli, pair.role + '_long')} > {factor:g} and on (job, task_name) "
            f"{_series(sli, pair.role + '_short')} > {factor:g}) * 0 + {level}"
        )
    parts.append(f"{_series(sli, 'page_fast_long')} * 0")
    return "max by (job, task_name) (\n  " + "\n  or ".join(parts) + "\n)"


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
            + ([{"id": "mappings", "value": _ALERT_MAPPINGS}] if name == "Alert" else [])
            + (
                [{"id": "custom.cellOptions", "value": {"type": "color-text"}}]
                if name == "Alert"
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
    fast = T["slo_page_fast_long_window"]
    slow = T["slo_page_slow_long_window"]
    by = "max by (job, task_name)"
    return [
        ("Budget left", f"{by} ({remaining})", "percentunit"),
        (
            "SLI",
            f"{by} (1 - {_series(sli, 'window')} * on (job, task_name) group_left () "
            f"(1 - task_name:requence_slo_{'availability' if sli == 'error' else 'latency'}"
            f"_objective:ratio))",
            "percentunit",
        ),
        (
            "Objective",
            f"{by} (task_name:requence_slo_"
            f"{'availability' if sli == 'error' else 'latency'}_objective:ratio{{{SEL}}})",
            "percentunit",
        ),
        (f"Burn rate {fast}", f"{by} ({_series(sli, 'page_fast_long')})", "none"),
        (f"Burn rate {slow}", f"{by} ({_series(sli, 'page_slow_long')})", "none"),
        (
            "Budget runs out in",
            f"{by} (clamp_min({remaining}, 0) * {WINDOW_S}\n"
            f"  / on (job, task_name) ({_series(sli, 'page_fast_long')} > 0))",
            "s",
        ),
        ("Alert", _alert_level(sli), "none"),
    ]


def _burn_panel(sli: str, role: str, what: str) -> dict[str, Any]:
    window = T[f"slo_{role}_long_window"]
    factor = float(T[f"slo_{role}_burn_rate"])
    return timeseries(
        f"{what} burn rate over {window}",
        f"How many times faster than the objective allows the {what.lower()} budget burns, "
        f"over {window}; 1 spends the budget exactly over {T['slo_window']}. The page fires "
        f"above the rules' slo_{role}_burn_rate ({factor:g} by default; no line is drawn, as the "
        "chart's values may change it).",
        [target(f"max by (job, task_name) ({_series(sli, role + '_long')})", "{{task_name}}")],
        "none",
    )


def _budget_panel(sli: str, what: str) -> dict[str, Any]:
    return timeseries(
        f"{what} budget left",
        f"Share of the {what.lower()} budget of the {T['slo_window']} window not yet spent; "
        "below 0 the objective is missed.",
        [
            target(
                f"max by (job, task_name) (task_name:requence_slo_{sli}_budget:remaining{{{SEL}}})",
                "{{task_name}}",
            )
        ],
        "percentunit",
    )


def slo_dashboard() -> Any:
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
                f"{description} Budget left, the burn rate now, when the budget runs out at "
                "the current (1h) rate, and which budget-burn alert's condition holds. Click "
                "a task name for its Tasks dashboard.",
                _columns(sli),
            ),
            24,
            9,
        )
        b.add(_burn_panel(sli, "page_fast", what), 8, 8)
        b.add(_burn_panel(sli, "page_slow", what), 8, 8)
        b.add(_budget_panel(sli, what), 8, 8)
    return _dashboard(
        "requence-slos",
        "Requence / SLOs",
        "Service level objectives per Requence task name: availability and opt-in latency, "
        "error budgets and multi-window burn rates, as the SLO alerts judge them.",
        b,
    )
