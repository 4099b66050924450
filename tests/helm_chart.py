"""The chart rendered by the Helm engine as an install would, and the rules it should hold.

The chart object comes from `helm_python.Chart.load(CHART_DIR)` (helm-python-sdk), loaded by
the test modules that skip without it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from exporter.metrics.alerting.objectives import RuleConfig
from exporter.metrics.alerting.render import render as render_rule_file
from exporter.metrics.alerting.rules import Scope

CHART_DIR = Path(__file__).resolve().parent.parent / "helm" / "requence-exporter"
RELEASE = "rel"
NAMESPACE = "monitoring"
# The job the chart's ServiceMonitor gives the release's scrapes (the Service's name).
JOB = f"{RELEASE}-requence-exporter"

Manifest = dict[str, Any]

# The install fails without a token; tests that are not about the token name a Secret.
TOKEN: dict[str, Any] = {"requence": {"existingSecret": "requence"}}


def render(chart: Any, values: dict[str, Any] | None = None, name: str = RELEASE) -> list[Manifest]:
    """Render like `helm template` and parse every Kubernetes object.

    Values without a `requence` part get TOKEN's, as an install needs a token.
    """
    values = values or {}
    if "requence" not in values:
        values = {**TOKEN, **values}
    rendered = chart.render(values, name=name, namespace=NAMESPACE, is_install=True)
    objects: list[Manifest] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def only(objects: list[Manifest], kind: str) -> Manifest:
    """The single object of `kind`."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def rendered_groups(
    chart: Any, extra: dict[str, Any] | None = None, values: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """spec.groups of the PrometheusRule rendered with `extra` prometheusRule values."""
    values = {**(values or {}), "prometheusRule": {"enabled": True, **(extra or {})}}
    groups: list[dict[str, Any]] = only(render(chart, values), "PrometheusRule")["spec"]["groups"]
    return groups


def chart_scoped(
    config: RuleConfig, job: str = JOB, namespace: str = NAMESPACE
) -> list[dict[str, Any]]:
    """The rule groups of `config` as the chart scopes them to `job` in `namespace`: every
    recorded series read is `job`'s only, every series the namespace's only, and constant
    objective series carry both."""
    regex = re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", namespace)
    groups: list[dict[str, Any]] = render_rule_file(config, Scope(job, namespace, regex))["groups"]
    return groups
