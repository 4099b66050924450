"""Write the Helm chart's copies of the rule file (as a Helm template) and of the dashboards.

Helm reads only files inside the chart. `files/alerts.tmpl.yml` is the rule file of
`render_rules` with every threshold replaced by a reference to
`.Values.prometheusRule.thresholds.<key>`, every selector scoped to the release's job, and the
rules' own Prometheus templates escaped, so the chart renders it with `tpl`. Run
`python grafana/chart_files.py` (`--check` only reports).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts grafana/ itself on the path; the generators import each other
# as the `grafana` package, so the repository root has to be there too.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exporter.core.units import duration_text, promql_duration  # noqa: E402
from exporter.metrics.alerting.objectives import THRESHOLDS, RuleConfig  # noqa: E402
from exporter.metrics.alerting.render import render  # noqa: E402
from exporter.metrics.alerting.rule_dumper import dump  # noqa: E402
from exporter.metrics.alerting.rules import (  # noqa: E402
    LAG_THRESHOLD_LIMIT,
    Scope,
    go_number,
)
from exporter.metrics.alerting.slo import LatencyObjective  # noqa: E402
from exporter.metrics.exposition import fmt_float  # noqa: E402
from exporter.metrics.families import DEFAULT_TASK_BUCKETS  # noqa: E402
from grafana.build import sync  # noqa: E402

__all__ = [
    "CHART",
    "CHART_THRESHOLDS",
    "THRESHOLD_KINDS",
    "alerts_template",
    "main",
    "rendered_chart_files",
    "thresholds_schema",
]

CHART: Final = ROOT / "helm" / "requence-exporter"
# `$`, not `.`: some rules sit inside `range` loops, where `.` is the loop's element.
_VALUE: Final = "$.Values.prometheusRule.thresholds.{key}"

# How the chart writes each kind of threshold into the rules. Numbers print as Go prints
# them; integers go through int64 because Helm reads values.yaml numbers as floats (1e+06);
# durations are plain (the schema allows only [0-9a-z]); the two free-text values are escaped
# for the double-quoted YAML string (and, for the regex, the PromQL string) they land in.
_PLACEHOLDERS: Final = {
    "number": "{{{{ " + _VALUE + " }}}}",
    "integer": "{{{{ int64 " + _VALUE + " }}}}",
    "duration": "{{{{ " + _VALUE + " }}}}",
    "promql_string": "{{{{ include `requence-exporter.rulePromqlString` " + _VALUE + " }}}}",
    # The same regex in a block scalar (multi-line PromQL): PromQL string escaping only.
    "promql_block": "{{{{ "
    + _VALUE
    + ' | toString | replace "\\\\" "\\\\\\\\" | replace "\\"" "\\\\\\"" }}}}',
    "text": "{{{{ include `requence-exporter.ruleText` " + _VALUE + " }}}}",
    # Burn-rate factors left unset scale with slo_window (helper requence-exporter.burnRate).
    "factor": "{{{{ include `requence-exporter.burnRate` (list "
    + _VALUE
    + " {default} $.Values.prometheusRule.thresholds.slo_window) }}}}",
}
# A duration threshold as a number of seconds, where a rule multiplies by it.
_SECONDS_PLACEHOLDER: Final = "{{ include `requence-exporter.seconds` " + _VALUE + " }}"
# Thresholds the chart sets from the release instead of from values: the job regex of the
# scrape alerts is the release's scrape job (helper requence-exporter.ruleJobRegex).
_FROM_RELEASE: Final = {
    "exporter_job_regex": {
        "promql_string": "{{ include `requence-exporter.ruleJobRegex` $ }}",
        # In a block scalar the regex needs PromQL string escaping only.
        "promql_block": "{{ regexQuoteMeta (include `requence-exporter.ruleJob` $)"
        + ' | replace "\\\\" "\\\\\\\\" }}',
    },
}
# The chart's rules are rendered with a `Scope`: every selector reads only the release's job in
# the release's namespace (two releases in one Prometheus, of one name in two namespaces too,
# never see each other's series). Placeholders until the rules' own templates are escaped: the
# job comes from helper requence-exporter.ruleJob, the namespace regex from
# requence-exporter.ruleNamespaceRegex (`.*` with prometheusRule.matchNamespace off).
_SCOPE: Final = "@@scope@@"
_NAMESPACE: Final = "@@namespace@@"
_NAMESPACE_LABEL: Final = "@@namespace_label@@"
_SCOPE_DEFINITION: Final = (
    "{{ $job := include `requence-exporter.ruleJob` . -}}\n"
    "{{ $namespaceRegex := include `requence-exporter.ruleNamespaceRegex` . -}}\n"
    "{{ $namespace := include `requence-exporter.namespace` . -}}\n"
)
_SCOPE_PLACEHOLDERS: Final = {
    _SCOPE: "{{ $job }}",
    _NAMESPACE: "{{ $namespaceRegex }}",
    _NAMESPACE_LABEL: "{{ $namespace }}",
}
# String thresholds that are not durations, and the kind of text each one is.
_TEXT_KEYS: Final = {"exporter_job_regex": "promql_string", "runbook_base_url": "text"}
# Kinds whose placeholder is correct only inside a double-quoted YAML scalar.
_QUOTED_ONLY: Final = frozenset({"promql_string", "text"})
_QUOTED_LINE: Final = re.compile(r'^\s*(?:- )?[A-Za-z_][A-Za-z0-9_.-]*: "')
_PROMETHEUS_TEMPLATE: Final = re.compile(r"\{\{.*?\}\}")
_HEADER: Final = (
    "# Generated by grafana/chart_files.py from exporter/metrics/alerting: do not edit.\n"
    "# The chart renders this with tpl: thresholds come from .Values.prometheusRule.thresholds.\n"
)


def _default_text(default: Any) -> str:
    return go_number(default) if isinstance(default, float) else str(default)


def threshold_kind(key: str, default: Any) -> str:
    """How the chart types and writes threshold `key` (number, integer, duration, or text)."""
    if isinstance(default, bool):
        raise TypeError(f"threshold {key}: booleans are not thresholds")
    if isinstance(default, int):
        return "integer"
    if isinstance(default, float):
        return "factor" if key.endswith("_burn_rate") else "number"
    if key in _TEXT_KEYS:
        return _TEXT_KEYS[key]
    if isinstance(default, str) and key.endswith(("_for", "_window", "_interval")):
        promql_duration(default)
        return "duration"
    raise TypeError(f"threshold {key}: say in grafana/chart_files.py how the chart writes it")


THRESHOLD_KINDS: Final = {key: threshold_kind(key, v) for key, v in THRESHOLDS.items()}
# The thresholds the chart takes as values (prometheusRule.thresholds), with their defaults.
CHART_THRESHOLDS: Final = {k: v for k, v in THRESHOLDS.items() if k not in _FROM_RELEASE}


# What values.schema.json admits for each kind; a duration is what Prometheus accepts.
_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "number": {"type": "number", "minimum": 0},
    "factor": {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000},
    "integer": {"type": "integer", "minimum": 0},
    # Prometheus's duration grammar: each unit at most once, largest first.
    "duration": {
        "type": "string",
        "minLength": 2,
        "pattern": "^([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$",
    },
    "promql_string": {"type": "string", "minLength": 1},
    "text": {"type": "string", "pattern": "^https?://\\S+$"},
}
# A range of [0s] is no range: the stall threshold doubles as a range in seconds.
_MINIMUM: Final = {"exporter_stall_seconds": 1}
# Lag thresholds the lag histogram cannot report (see LAG_THRESHOLD_LIMIT) are refused at install.
_EXCLUSIVE_MAXIMUM: Final = {"exporter_lag_p95_seconds": LAG_THRESHOLD_LIMIT}


def thresholds_schema() -> dict[str, Any]:
    """The JSON schema of `prometheusRule.thresholds`: exactly the keys of THRESHOLDS."""
    properties: dict[str, Any] = {}
    for key in CHART_THRESHOLDS:
        schema = dict(_SCHEMAS[THRESHOLD_KINDS[key]])
        if key in _MINIMUM:
            schema["minimum"] = _MINIMUM[key]
        if key in _EXCLUSIVE_MAXIMUM:
            schema["exclusiveMaximum"] = _EXCLUSIVE_MAXIMUM[key]
        properties[key] = schema
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _values_schema() -> str:
    path = CHART / "values.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["prometheusRule"]["properties"]["thresholds"] = thresholds_schema()
    schema["properties"]["prometheusRule"]["properties"]["slo"] = slo_schema()
    return json.dumps(schema, indent=2) + "\n"


_OBJECTIVE: Final = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
# Latency thresholds as the chart takes them (`2.5s`), and the `le` label each one matches.
LATENCY_BUCKETS: Final = {duration_text(b): fmt_float(float(b)) for b in DEFAULT_TASK_BUCKETS}


def slo_schema() -> dict[str, Any]:
    """The JSON schema of `prometheusRule.slo`: objectives and latency SLOs per task name."""
    latency = {
        "type": "object",
        "additionalProperties": False,
        "required": ["threshold", "objective"],
        "properties": {
            "threshold": {"type": "string", "enum": list(LATENCY_BUCKETS)},
            "objective": _OBJECTIVE,
        },
    }
    # Task names as `requence-exporter rules` takes them: no control characters, bounded.
    names = {"pattern": "^[^\\x00-\\x1f\\x7f]{1,512}$"}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "objectives": {
                "type": "object",
                "propertyNames": names,
                "additionalProperties": _OBJECTIVE,
            },
            "latency": {"type": "object", "propertyNames": names, "additionalProperties": latency},
        },
    }


def _sentinel(key: str) -> str:
    return f"@@threshold.{key}@@"


_NAME = "@@task_name@@"
_LATENCY_NAME = "@@latency_name@@"
_SLO = "$.Values.prometheusRule.slo"
# One objective rule per entry of the values: Helm ranges over them where the sentinel rules are.
_AVAILABILITY_LOOP: Final = (
    "{{- range $name, $objective := " + _SLO + ".objectives }}\n{rule}\n{{- end }}"
)
_LATENCY_LOOP: Final = (
    "{{- $buckets := dict "
    + " ".join(f'"{t}" "{le}"' for t, le in LATENCY_BUCKETS.items())
    + " }}\n"
    "{{- range $name, $spec := " + _SLO + ".latency }}\n"
    "{{- $le := get $buckets (toString $spec.threshold) }}\n"
    "{{- if not $le }}\n"
    '{{- fail (printf "prometheusRule.slo.latency.%s.threshold: %v is not a task duration '
    'bucket (one of %s)" $name $spec.threshold (keys $buckets | sortAlpha | join ", ")) }}\n'
    "{{- end }}\n"
    "{rule}\n"
    "{{- end }}"
)
# The latency rules exist only with latency SLOs (`rules` leaves them out likewise).
_LATENCY_IF: Final = "{{- if " + _SLO + ".latency }}"
_RULE_START: Final = re.compile(r"^ {6}- (?:record|alert): ")
_GROUP_START: Final = re.compile(r"^ {2}- name: ")
_LATENCY_RULE: Final = re.compile(r"requence_slo_latency_|RequenceTaskLatency")


def _chunks(lines: list[str]) -> list[list[str]]:
    """The lines cut where each rule or group starts."""
    chunks: list[list[str]] = [[]]
    for line in lines:
        if _RULE_START.match(line) or _GROUP_START.match(line):
            chunks.append([])
        chunks[-1].append(line)
    return chunks


def _loops(text: str) -> str:
    """Replace the sentinel objective rules with Helm loops over the values, and wrap the
    latency rules in a condition on latency SLOs."""
    out: list[str] = []
    loop: list[str] = []
    loop_kind = ""
    in_latency = False
    for chunk in [*_chunks(text.split("\n")), []]:
        first = chunk[0] if chunk else ""
        body = "\n".join(chunk)
        kind = "availability" if _NAME in body else "latency" if _LATENCY_NAME in body else ""
        if loop and kind != loop_kind:
            out.append(_loop_text(loop_kind, loop))
            loop = []
        latency = bool(_RULE_START.match(first)) and bool(_LATENCY_RULE.search(first))
        if in_latency and not latency:
            out.append("{{- end }}")
        if latency and not in_latency:
            out.append(_LATENCY_IF)
        in_latency = latency
        if kind:
            loop_kind = kind
            loop += chunk
        else:
            out += chunk
    return "\n".join(out)


def _loop_text(kind: str, lines: list[str]) -> str:
    text = "\n".join(lines)
    if kind == "availability":
        text = text.replace(_NAME, "{{ include `requence-exporter.ruleText` $name }}")
        fields = {"@@objective@@": "$objective"}
        loop = _AVAILABILITY_LOOP
    else:
        # In a selector the name is a PromQL string inside a double-quoted YAML string.
        text = "\n".join(
            line.replace(
                _LATENCY_NAME,
                "{{ include `requence-exporter.rulePromqlString` $name }}"
                if line.lstrip().startswith("expr:")
                else "{{ include `requence-exporter.ruleText` $name }}",
            )
            for line in text.split("\n")
        )
        fields = {
            "@@objective@@": "$spec.objective",
            "@@le@@": "$le",
            "@@threshold@@": "$spec.threshold",
        }
        loop = _LATENCY_LOOP
    for sentinel, value in fields.items():
        text = text.replace(sentinel, "{{ " + value + " }}")
    leftover = text
    for scope in _SCOPE_PLACEHOLDERS:
        leftover = leftover.replace(scope, "")
    if re.search(r"@@(?!threshold\.|seconds\.)", leftover):
        raise ValueError(f"an objective rule keeps a sentinel: {text}")
    return loop.replace("{rule}", text)


def alerts_template() -> str:
    """The chart's rule file template: the rule file with Helm references for thresholds."""
    config = RuleConfig(
        thresholds={key: _sentinel(key) for key in THRESHOLDS},
        objectives={_NAME: 0.5},
        latency={
            _LATENCY_NAME: LatencyObjective(
                _LATENCY_NAME, "@@le@@", "@@threshold@@", "@@objective@@"
            )
        },
        disabled=[],
    )
    groups = render(config, Scope(_SCOPE, _NAMESPACE_LABEL, _NAMESPACE))["groups"]
    for group in groups:
        for rule in group["rules"]:
            if rule.get("record", "").endswith("availability_objective:override"):
                # An objective is a value: the sentinel rule gets a placeholder objective.
                rule["expr"] = "vector(@@objective@@)"
                rule["labels"]["objective"] = "@@objective@@"
    text = dump({"groups": groups})
    if "`" in text:
        raise ValueError("the rules contain a backquote, which the Helm escaping cannot hold")
    # The rules' own {{ ... }} are Prometheus templates: make Helm print them verbatim.
    text = _PROMETHEUS_TEMPLATE.sub(lambda m: "{{`" + m.group() + "`}}", text)
    lines = text.split("\n")
    for key, kind in THRESHOLD_KINDS.items():
        sentinel = _sentinel(key)
        used = [line for line in lines if sentinel in line or f"@@seconds.{key}@@" in line]
        if not used:
            raise ValueError(f"threshold {key} is used by no rule")
        seconds = _SECONDS_PLACEHOLDER.replace("{key}", key)
        lines = [line.replace(f"@@seconds.{key}@@", seconds) for line in lines]
        for index, line in enumerate(lines):
            if sentinel not in line:
                continue
            line_kind = kind
            if kind == "promql_string" and not _QUOTED_LINE.match(line):
                line_kind = "promql_block"
            elif kind in _QUOTED_ONLY and not _QUOTED_LINE.match(line):
                raise ValueError(f"threshold {key} must appear only inside double-quoted strings")
            placeholder = _FROM_RELEASE.get(key, {}).get(line_kind) or _PLACEHOLDERS[
                line_kind
            ].format(key=key, default=_default_text(THRESHOLDS[key]))
            lines[index] = line.replace(sentinel, placeholder)
    text = _loops("\n".join(lines))
    for sentinel, placeholder in _SCOPE_PLACEHOLDERS.items():
        text = text.replace(sentinel, placeholder)
    return _HEADER + _SCOPE_DEFINITION + text


def rendered_chart_files() -> dict[Path, str | bytes]:
    """Every file of the chart that is generated or copied, and what it must hold."""
    files: dict[Path, str | bytes] = {
        CHART / "files" / "alerts.tmpl.yml": alerts_template(),
        CHART / "values.schema.json": _values_schema(),
    }
    for source in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        files[CHART / "files" / "dashboards" / source.name] = source.read_bytes()
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the chart's files; returns the exit status."""
    wanted = rendered_chart_files()
    # Dashboards removed from grafana/dashboards/ leave the chart too.
    present = set((CHART / "files" / "dashboards").glob("*.json"))
    return sync(argv, __doc__ or "", ROOT, wanted, sorted(present - set(wanted)))


if __name__ == "__main__":
    raise SystemExit(main())
