"""What every Requence dashboard shares: the release's selectors, the variables, the frame
around the panels, and the grid they are laid out on in named sizes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, NamedTuple

from grafana.panels import datasource_variable, query_variable

__all__ = [
    "CHART",
    "CHART_THIRD",
    "CHART_WIDE",
    "COLUMNS",
    "EXPORTER",
    "NODES",
    "ROW",
    "STAT",
    "STAT_HALF",
    "TABLE",
    "TASKS",
    "Board",
    "Size",
    "dashboard",
]

# The release: an optional cluster label, the namespace and the job (absent labels match .*).
EXPORTER: Final = 'cluster=~"$cluster", namespace=~"$namespace", job=~"$job"'
TASKS: Final = f'{EXPORTER}, task_name=~"$task_name"'
NODES: Final = f'{TASKS}, node_type=~"$node_type", node=~"$node"'

# Grafana's grid is 24 columns wide; a height counts rows of about 30 pixels.
COLUMNS: Final = 24


class Size(NamedTuple):
    """A panel's width in grid columns and height in grid rows."""

    width: int
    height: int


ROW: Final = Size(COLUMNS, 1)
# A single value: four to a row, or two.
STAT: Final = Size(COLUMNS // 4, 4)
STAT_HALF: Final = Size(COLUMNS // 2, 4)
# A chart: two to a row, three, or one across the whole row.
CHART: Final = Size(COLUMNS // 2, 8)
CHART_THIRD: Final = Size(COLUMNS // 3, 8)
CHART_WIDE: Final = Size(COLUMNS, 8)
# A table across the whole row, one line taller than a chart for its header.
TABLE: Final = Size(COLUMNS, 9)


class Board:
    """Lays panels out left to right in rows of `COLUMNS` and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0

    def row(self, title: str) -> None:
        """Start a new titled row."""
        if self._x:
            self._newline()
        self.add({"collapsed": False, "panels": [], "title": title, "type": "row"}, ROW)
        self._newline()

    def add(self, panel: dict[str, Any], size: Size) -> None:
        """Place `panel` at the next free spot of `size`."""
        if self._x + size.width > COLUMNS:
            self._newline()
        placed = {
            **panel,
            "gridPos": {"h": size.height, "w": size.width, "x": self._x, "y": self._y},
            "id": len(self.panels) + 1,
        }
        self.panels.append(placed)
        self._x += size.width
        self._row_height = max(self._row_height, size.height)


def _variables(extra: Iterable[dict[str, Any]], tasks: bool) -> dict[str, Any]:
    """The variables; `tasks` adds the traces datasource and the task name (task dashboards)."""
    return {
        "list": [
            datasource_variable("datasource", "Data source", "prometheus"),
            *([datasource_variable("traces", "Traces", "tempo")] if tasks else []),
            # Clusters and namespaces that run an exporter (empty where the label is absent).
            query_variable("cluster", "Cluster", "requence_exporter_build_info", "cluster"),
            query_variable(
                "namespace",
                "Namespace",
                'requence_exporter_build_info{cluster=~"$cluster"}',
                "namespace",
            ),
            # All means the jobs that run an exporter, never every job Prometheus scrapes.
            query_variable(
                "job",
                "Job",
                'requence_exporter_build_info{cluster=~"$cluster", namespace=~"$namespace"}',
                "job",
                all_value=None,
            ),
            *(
                [
                    query_variable(
                        "task_name",
                        "Task",
                        f"requence_tasks_started_total{{{EXPORTER}}}",
                        "task_name",
                    )
                ]
                if tasks
                else []
            ),
            *extra,
        ]
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    board: Board,
    *,
    variables: Iterable[dict[str, Any]] = (),
    tasks: bool = True,
) -> dict[str, Any]:
    """The dashboard of `board`'s panels with the shared variables and `variables` after them
    (`tasks`: the task dashboards' traces datasource and task name too), linked to the other
    Requence dashboards."""
    return {
        "description": description,
        "editable": True,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["requence"],
                "title": "Requence",
                "type": "dashboards",
            }
        ],
        "panels": board.panels,
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["requence"],
        "templating": _variables(variables, tasks),
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
    }
