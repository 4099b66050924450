"""Building blocks for Grafana dashboard JSON: variables, targets and panels.

Every panel and target uses the `${datasource}` variable, never a fixed datasource uid.
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import quote

__all__ = [
    "PROMETHEUS",
    "RI",
    "bargauge",
    "datasource_variable",
    "heatmap",
    "per_second",
    "quantiles",
    "query_variable",
    "stat",
    "target",
    "timeseries",
    "traces_link",
]

PROMETHEUS: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
# The range of rate(): Grafana's, at least four scrape intervals whatever the zoom.
RI: Final = "$__rate_interval"
_REF_IDS = "ABCDEFGHIJ"
_QUANTILES: Final = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))


def datasource_variable(name: str, label: str, plugin: str) -> dict[str, Any]:
    """A variable choosing a datasource of one plugin type (`prometheus`, `tempo`)."""
    return {
        "current": {},
        "hide": 0,
        "includeAll": False,
        "label": label,
        "multi": False,
        "name": name,
        "options": [],
        "query": plugin,
        "refresh": 1,
        "regex": "",
        "type": "datasource",
    }


def query_variable(
    name: str, label: str, metric: str, label_name: str, *, all_value: str | None = ".*"
) -> dict[str, Any]:
    """A multi-value variable over the values of `label_name` on `metric`.

    All is `all_value`; None makes Grafana send the listed values themselves (`(a|b)`), for a
    variable whose All must not match anything beyond its list.
    """
    query = f"label_values({metric}, {label_name})"
    return {
        "allValue": all_value,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": PROMETHEUS,
        "definition": query,
        "hide": 0,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "options": [],
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "type": "query",
    }


def target(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    exemplar: bool = False,
    fmt: str = "time_series",
) -> dict[str, Any]:
    """One Prometheus query of a panel (its refId is set when the panel is built)."""
    return {
        "datasource": PROMETHEUS,
        "editorMode": "code",
        "exemplar": exemplar,
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
    }


def per_second(metric: str, selector: str, by: str = "") -> str:
    """The summed per-second rate of counter `metric` over the series of `selector`, grouped
    `by` (label names) when given."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({metric}{{{selector}}}[{RI}]))"


def quantiles(buckets: str, selector: str, *, exemplar: bool = True) -> list[dict[str, Any]]:
    """The p50, p95 and p99 of histogram `buckets` over the series of `selector`."""
    return [
        target(
            f"histogram_quantile({q}, sum by (le) (rate({buckets}{{{selector}}}[{RI}])))",
            name,
            exemplar=exemplar,
        )
        for name, q in _QUANTILES
    ]


def _with_ref_ids(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**t, "refId": _REF_IDS[i]} for i, t in enumerate(targets)]


def _steps(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def traces_link(title: str, traceql: str) -> dict[str, Any]:
    """A data link opening Explore on the `${traces}` datasource with a TraceQL search."""
    pane = {
        "traces": {
            "datasource": "${traces}",
            "queries": [
                {
                    "datasource": {"type": "tempo", "uid": "${traces}"},
                    "limit": 20,
                    "query": traceql,
                    "queryType": "traceql",
                    "refId": "A",
                }
            ],
            "range": {"from": "${__from}", "to": "${__to}"},
        }
    }
    encoded = quote(json.dumps(pane, sort_keys=True, separators=(",", ":")), safe="${}:,")
    return {"targetBlank": True, "title": title, "url": f"/explore?schemaVersion=1&panes={encoded}"}


def timeseries(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    *,
    stack: bool = False,
    links: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A time series panel.

    No threshold lines: alert thresholds are set where the rules are rendered (the chart's
    values), and a copy here would go stale the moment they change.
    """
    return {
        "datasource": PROMETHEUS,
        "description": description,
        "fieldConfig": {
            "defaults": {
                "color": {"mode": "palette-classic"},
                "custom": {
                    "drawStyle": "line",
                    "fillOpacity": 20 if stack else 5,
                    "lineWidth": 1,
                    "showPoints": "never",
                    "spanNulls": False,
                    "stacking": {"group": "A", "mode": "normal" if stack else "none"},
                    "thresholdsStyle": {"mode": "off"},
                },
                "links": links or [],
                "min": 0,
                "thresholds": _steps(("green", None)),
                "unit": unit,
            },
            "overrides": [],
        },
        "options": {
            "legend": {
                "calcs": ["mean", "max", "lastNotNull"],
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": _with_ref_ids(targets),
        "title": title,
        "type": "timeseries",
    }


def stat(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    *,
    steps: list[tuple[str, float | None]] | None = None,
    mappings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A single-value panel showing the last value, coloured by `steps`.

    With instant targets (per-instance values) it shows only series that exist now, so a pod
    replaced hours ago leaves no tile; there is then no sparkline either.
    """
    instant = all(t["instant"] for t in targets)
    return {
        "datasource": PROMETHEUS,
        "description": description,
        "fieldConfig": {
            "defaults": {
                "color": {"mode": "thresholds"},
                "mappings": mappings or [],
                "thresholds": _steps(*(steps or [("green", None)])),
                "unit": unit,
            },
            "overrides": [],
        },
        "options": {
            "colorMode": "value",
            "graphMode": "none" if instant else "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        },
        "targets": _with_ref_ids(targets),
        "title": title,
        "type": "stat",
    }


def bargauge(
    title: str, description: str, targets: list[dict[str, Any]], unit: str
) -> dict[str, Any]:
    """Horizontal bars of instant values: the shape for top-k lists."""
    return {
        "datasource": PROMETHEUS,
        "description": description,
        "fieldConfig": {
            "defaults": {
                "color": {"mode": "continuous-YlRd"},
                "min": 0,
                "thresholds": _steps(("green", None)),
                "unit": unit,
            },
            "overrides": [],
        },
        "options": {
            "displayMode": "gradient",
            "minVizHeight": 10,
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
            "valueMode": "color",
        },
        "targets": _with_ref_ids(targets),
        "title": title,
        "type": "bargauge",
    }


def heatmap(
    title: str, description: str, targets: list[dict[str, Any]], unit: str
) -> dict[str, Any]:
    """A heatmap of pre-bucketed histogram series (`le` legend)."""
    return {
        "datasource": PROMETHEUS,
        "description": description,
        "fieldConfig": {"defaults": {"custom": {"scaleDistribution": {"type": "linear"}}}},
        "options": {
            "calculate": False,
            "cellGap": 1,
            "color": {
                "exponent": 0.5,
                "fill": "dark-orange",
                "mode": "scheme",
                "reverse": False,
                "scale": "exponential",
                "scheme": "Oranges",
                "steps": 64,
            },
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-9},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"show": True, "yHistogram": True},
            "yAxis": {"axisPlacement": "left", "unit": unit},
        },
        "targets": _with_ref_ids(targets),
        "title": title,
        "type": "heatmap",
    }
