"""The Helm chart, rendered and linted by the real Helm engine, its objects checked strictly."""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from exporter.config import OPTIONS, settings_for
from exporter.core.errors import ConfigError
from exporter.metrics.alerting.objectives import THRESHOLDS, RuleConfig
from exporter.metrics.alerting.render import render as render_rule_file
from exporter.requence.token import encode_token
from exporter.serving.webconfig import load_web_config
from grafana import chart_files
from grafana.chart_files import CHART_THRESHOLDS, THRESHOLD_KINDS, rendered_chart_files
from tests.helm_chart import (
    CHART_DIR,
    JOB,
    NAMESPACE,
    RELEASE,
    TOKEN,
    Manifest,
    chart_scoped,
    only,
    render,
    rendered_groups,
)
from tests.tools import require_tool

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = Path(__file__).resolve().parent.parent
RULE_FILE = ROOT / "grafana" / "alerts.yml"
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion), and the newest schemas.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
OPERATOR_GROUP = "monitoring.coreos.com/"

ALL_ON: dict[str, Any] = {
    "requence": {"accessToken": "not-a-real-token"},
    "otlp": {
        "endpoint": "http://otel-collector.observability:4317",
        "headers": "x-tenant=ops",
        "resourceAttributes": {"deployment.environment": "prod"},
    },
    "config": {"max-tracked-tasks": 50000, "task-ttl": "12h"},
    "extraArgs": ["--since=15m"],
    "extraEnv": [{"name": "TZ", "value": "UTC"}],
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "dashboards": {"enabled": True, "annotations": {"grafana_folder": "Requence"}},
    "networkPolicy": {
        "enabled": True,
        "ingressFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
    },
    "podDisruptionBudget": {"enabled": True},
    "persistence": {"enabled": True, "storageClass": "standard"},
}
SHARDED: dict[str, Any] = {**ALL_ON, "sharding": {"shards": 3}}

SCRAPE_AUTH = {
    "username": {"name": "scrape-auth", "key": "username"},
    "password": {"name": "scrape-auth", "key": "password"},
}
SCRAPE_TLS = {
    "ca": {"secret": {"name": "requence-tls", "key": "ca.crt"}},
    "serverName": f"{RELEASE}-requence-exporter.{NAMESPACE}.svc",
}
# A bcrypt hash at the lowest cost, for a web config the exporter must accept.
PW_HASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
WEB: dict[str, Any] = {
    **ALL_ON,
    "webConfig": {
        "enabled": True,
        "config": {
            "tls_server_config": {"cert_file": "tls.crt", "key_file": "tls.key"},
            "basic_auth_users": {"prometheus": PW_HASH},
        },
        "tlsSecret": "requence-tls",
    },
    "serviceMonitor": {
        **ALL_ON["serviceMonitor"],
        "tlsConfig": SCRAPE_TLS,
        "basicAuth": SCRAPE_AUTH,
    },
}

# The conventions users expect of a chart, all at once.
CONVENTIONS: dict[str, Any] = {
    **TOKEN,
    "namespaceOverride": "observability",
    "commonLabels": {"team": "platform"},
    "annotations": {"example.com/owner": "platform"},
    "reloader": {"enabled": True},
    "revisionHistoryLimit": 5,
    "startupProbe": {"enabled": True, "periodSeconds": 2, "failureThreshold": 90},
    "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["true"]}],
    "extraContainers": [
        {
            "name": "sidecar",
            "image": "busybox:1.36",
            "args": ['{{ include "requence-exporter.fullname" . }}'],
        }
    ],
    "extraVolumes": [{"name": "scratch", "emptyDir": {}}],
    "extraVolumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    "persistence": {"emptyDir": {"sizeLimit": "2Gi"}},
    "serviceMonitor": {
        "enabled": True,
        "annotations": {"example.com/owner": "platform"},
        "jobLabel": "team",
        "targetLabels": ["team"],
        "podTargetLabels": ["team"],
        "sampleLimit": 2000000,
    },
    "prometheusRule": {"enabled": True},
    "dashboards": {"enabled": True},
}


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    """The chart loaded by the Helm engine."""
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    """The exporter's pod spec, from the Deployment or the StatefulSet."""
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == 1
    spec: dict[str, Any] = workloads[0]["spec"]["template"]["spec"]
    return spec


def container(objects: list[Manifest]) -> dict[str, Any]:
    """The exporter container."""
    containers = pod_spec(objects)["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def env_of(objects: list[Manifest]) -> dict[str, dict[str, Any]]:
    """The container's environment by variable name."""
    return {item["name"]: item for item in container(objects).get("env", [])}


def chart_values() -> dict[str, Any]:
    """The chart's values.yaml."""
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return loaded


# --- chart metadata and lint -------------------------------------------------------------


def test_app_version_is_the_package_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    chart_yaml = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert str(chart_yaml["appVersion"]) == pyproject["project"]["version"]


@pytest.mark.parametrize(
    "values",
    [{}, ALL_ON, SHARDED, WEB, CONVENTIONS],
    ids=["defaults", "all-on", "sharded", "web-config", "conventions"],
)
def test_lint_strict_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(CHART_DIR, {**TOKEN, **values}, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    # Severity 1 is informational (e.g. "icon is recommended"); warnings and errors fail.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_catches_a_broken_value() -> None:
    report = helm.lint(CHART_DIR, {"serviceMonitor": {"enabeld": True}}, strict=True)
    assert report["errors"] or [m for m in report["messages"] if m["severity"] >= 2]


# --- values schema -----------------------------------------------------------------------


def test_schema_accepts_the_defaults_and_every_option(chart: Any) -> None:
    for values in ({}, chart_values(), ALL_ON, SHARDED, WEB, CONVENTIONS):
        chart.validate_schema(values)


# `run` flags the chart sets itself (listen, shard, state file) or takes as a Secret (tokens).
CHART_OWN_FLAGS = {"listen", "shard", "state-file", "access-token", "bearer-token"}


def test_config_admits_every_run_flag_the_chart_leaves_to_the_user(chart: Any) -> None:
    # values.yaml and docs/deploy.md promise any `run` flag under `config`: a flag the schema
    # does not list is refused at install.
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    admitted = set(schema["properties"]["config"]["properties"])
    assert admitted == {opt.flag.removeprefix("--") for opt in OPTIONS} - CHART_OWN_FLAGS
    chart.validate_schema({"config": {"stream-reader": "httpx", "gather-reads": "0"}})
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"config": {"stream-reader": "curl"}})


@pytest.mark.parametrize(
    "typo",
    [
        {"serviceMonitr": {"enabled": True}},
        {"serviceMonitor": {"enabeld": True}},
        {"requence": {"acessToken": "x"}},
        {"config": {"max-traked-tasks": 10}},
        {"otlp": {"protocol": "grcp"}},
        {"prometheusRule": {"thresholds": {"RequenceTaskErrorRatioHigh": 0.1}}},
        {"webConfig": {"enabeld": True}},
    ],
)
def test_schema_rejects_typos(chart: Any, typo: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(typo)
    with pytest.raises(helm.HelmError):
        chart.render({**TOKEN, **typo}, name=RELEASE, namespace=NAMESPACE)


# --- Kubernetes validity -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "values",
    [{}, ALL_ON, SHARDED, WEB, CONVENTIONS],
    ids=["defaults", "all-on", "sharded", "web-config", "conventions"],
)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_builtin_objects_validate_strictly(
    chart: Any, values: dict[str, Any], kube_version: str
) -> None:
    builtin = [o for o in render(chart, values) if not o["apiVersion"].startswith(OPERATOR_GROUP)]
    assert builtin
    for manifest in builtin:
        kubernetes_validate.validate(manifest, kube_version, strict=True)


def test_strict_validation_catches_a_misplaced_field(chart: Any) -> None:
    deployment = copy.deepcopy(only(render(chart), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


def test_defaults_render_one_exporter_and_no_optional_parts(chart: Any) -> None:
    objects = render(chart)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["Deployment", "NetworkPolicy", "Service", "ServiceAccount"]
    assert only(objects, "Deployment")["spec"]["replicas"] == 1
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env_of(objects)


def test_all_options_render_every_part(chart: Any) -> None:
    kinds = {o["kind"] for o in render(chart, ALL_ON)}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    }


# --- the pod -----------------------------------------------------------------------------


def dockerfile_user() -> tuple[int, int]:
    """The numeric user and group the image runs as."""
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (ROOT / "Dockerfile").read_text(), re.M)
    assert users, "the Dockerfile sets a numeric USER uid:gid"
    uid, gid = users[-1]
    return int(uid), int(gid)


@pytest.mark.parametrize("values", [{}, SHARDED], ids=["defaults", "sharded"])
def test_pod_is_hardened(chart: Any, values: dict[str, Any]) -> None:
    objects = render(chart, values)
    pod = pod_spec(objects)
    uid, gid = dockerfile_user()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["runAsGroup"] == gid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] == 30
    security = container(objects)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == uid
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container(objects)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_probes_and_port(chart: Any) -> None:
    objects = render(chart)
    exporter = container(objects)
    assert exporter["ports"] == [{"name": "http-metrics", "containerPort": 9721, "protocol": "TCP"}]
    assert exporter["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert exporter["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    assert "--listen=0.0.0.0:9721" in exporter["args"]
    service = only(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 9721, "targetPort": "http-metrics", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"].items() <= pod_spec_labels(objects).items()


def pod_spec_labels(objects: list[Manifest]) -> dict[str, str]:
    """Labels of the exporter's pod template."""
    workload = next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def state_volume(objects: list[Manifest]) -> tuple[str, dict[str, Any] | None]:
    """The state file's directory as --state-file names it, and the volume mounted there."""
    exporter = container(objects)
    state_args = [a for a in exporter["args"] if a.startswith("--state-file=")]
    assert len(state_args) == 1
    state_dir = str(Path(state_args[0].split("=", 1)[1]).parent)
    mounts = {m["mountPath"]: m["name"] for m in exporter["volumeMounts"]}
    assert state_dir in mounts, "the state file lives on a mounted volume"
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    return state_dir, volumes.get(mounts[state_dir])


def test_state_file_and_tmp_are_the_only_writable_mounts(chart: Any) -> None:
    objects = render(chart)
    state_dir, volume = state_volume(objects)
    assert state_dir == "/var/lib/requence-exporter"
    assert volume is not None
    assert "emptyDir" in volume
    mounts = {m["mountPath"]: m["name"] for m in container(objects)["volumeMounts"]}
    assert set(mounts) == {state_dir, "/tmp"}
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_persistence_puts_the_state_file_on_a_claim(chart: Any) -> None:
    objects = render(chart, {"persistence": {"enabled": True, "size": "2Gi"}})
    _, volume = state_volume(objects)
    assert volume is not None
    claim = only(objects, "PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    existing = render(chart, {"persistence": {"enabled": True, "existingClaim": "mine"}})
    assert not [o for o in existing if o["kind"] == "PersistentVolumeClaim"]
    assert state_volume(existing)[1] == {
        "name": "state",
        "persistentVolumeClaim": {"claimName": "mine"},
    }


def pod_settings(objects: list[Manifest], pod_name: str) -> Any:
    """The exporter's settings in the pod `pod_name`, its environment laid out as the kubelet
    would (a token for the Secret references, $(VAR) expanded in the arguments)."""
    env: dict[str, str] = {}
    for name, item in env_of(objects).items():
        if "value" in item:
            env[name] = item["value"]
        elif item["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[name] = pod_name
        elif name == "REQUENCE_ACCESS_TOKEN":
            env[name] = encode_token("b", "https://requence.invalid")
    args = [
        re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), arg)
        for arg in container(objects)["args"]
    ]
    assert args[0] == "run"
    return settings_for(args[1:], env)


def test_sharding_runs_a_statefulset_with_one_shard_per_pod(chart: Any) -> None:
    objects = render(chart, SHARDED)
    assert not [o for o in objects if o["kind"] in ("Deployment", "PersistentVolumeClaim")]
    statefulset = only(objects, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    claims = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"] for m in container(objects)["volumeMounts"]}
    assert [c["metadata"]["name"] for c in claims] == ["state"]
    assert "state" in mounts
    assert "state" not in {v["name"] for v in pod_spec(objects)["volumes"]}


def test_each_shard_takes_its_ordinal_from_its_pod_name(chart: Any) -> None:
    # #11: the pod-index label exists from Kubernetes 1.28 only; the pod name (<statefulset>-<i>)
    # on every version the chart allows (1.25 and up).
    objects = render(chart, SHARDED)
    statefulset = only(objects, "StatefulSet")["metadata"]["name"]
    shards = [pod_settings(objects, f"{statefulset}-{i}").shard for i in range(3)]
    assert shards == [(0, 3), (1, 3), (2, 3)]
    assert "apps.kubernetes.io/pod-index" not in json.dumps(objects)
    with pytest.raises(ConfigError, match="--shard"):
        pod_settings(objects, f"{statefulset}-3")


@pytest.mark.parametrize("values", [{}, SHARDED], ids=["single", "sharded"])
def test_chart_allows_kubernetes_1_25_and_lints_clean_there(values: dict[str, Any]) -> None:
    chart_yaml = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart_yaml["kubeVersion"] == ">=1.25.0-0"
    report = helm.lint(
        CHART_DIR, {**TOKEN, **values}, strict=True, namespace=NAMESPACE, kube_version="v1.25.0"
    )
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("shards", [1, 3])
def test_sharding_keeps_the_scrape_service_and_adds_a_headless_one(chart: Any, shards: int) -> None:
    # #11: Kubernetes refuses to turn a Service headless (or back) on upgrade, so the scrape
    # Service must be the same object whether sharding is on or off, with service.type honoured.
    values = {"sharding": {"shards": shards}, "service": {"type": "NodePort"}}
    values["serviceMonitor"] = {"enabled": True}
    objects = render(chart, values)
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    scrape = services.pop(JOB)
    assert scrape["spec"]["type"] == "NodePort"
    assert "clusterIP" not in scrape["spec"]
    assert scrape == only(render(chart, {**values, "sharding": {"shards": 1}}), "Service")
    monitor = only(objects, "ServiceMonitor")["spec"]["selector"]
    assert selects(monitor, scrape["metadata"]["labels"])
    if shards == 1:
        assert services == {}
        return
    [headless] = services.values()
    assert headless["spec"]["clusterIP"] == "None"
    assert only(objects, "StatefulSet")["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["selector"].items() <= pod_spec_labels(objects).items()
    # The ServiceMonitor scrapes every shard once: through the scrape Service only.
    assert not selects(monitor, headless["metadata"]["labels"])


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions) selects `labels`."""
    if not selector["matchLabels"].items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not held:
            return False
    return True


# --- secrets and environment -------------------------------------------------------------


def test_token_from_values_goes_through_the_charts_secret(chart: Any) -> None:
    objects = render(chart, {"requence": {"accessToken": "tok-123"}})
    secret = only(objects, "Secret")
    ref = env_of(objects)["REQUENCE_ACCESS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"]
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == "tok-123"
    assert "value" not in env_of(objects)["REQUENCE_ACCESS_TOKEN"]


def test_token_from_an_existing_secret(chart: Any) -> None:
    objects = render(chart, {"requence": {"existingSecret": "requence", "existingSecretKey": "t"}})
    assert not [o for o in objects if o["kind"] == "Secret"]
    ref = env_of(objects)["REQUENCE_ACCESS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "requence", "key": "t"}


def test_a_changed_secret_rolls_the_pod(chart: Any) -> None:
    def checksum(token: str) -> str:
        workload = only(render(chart, {"requence": {"accessToken": token}}), "Deployment")
        value: str = workload["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]
        return value

    assert checksum("one") != checksum("two")


def test_otlp_settings_become_otel_variables(chart: Any) -> None:
    objects = render(chart, ALL_ON)
    env = env_of(objects)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == ALL_ON["otlp"]["endpoint"]
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "grpc"
    assert env["OTEL_SERVICE_NAME"]["value"] == "requence"
    assert env["OTEL_RESOURCE_ATTRIBUTES"]["value"] == "deployment.environment=prod"
    ref = env["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"]
    secret = only(objects, "Secret")
    assert ref["name"] == secret["metadata"]["name"]
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == "x-tenant=ops"


def test_otlp_headers_from_an_existing_secret(chart: Any) -> None:
    values: dict[str, Any] = {"otlp": {"endpoint": "http://c:4318", "protocol": "http/protobuf"}}
    values["otlp"]["headersSecret"] = {"name": "otlp-auth", "key": "headers"}
    objects = render(chart, values)
    assert not [o for o in objects if o["kind"] == "Secret"]
    env = env_of(objects)
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "http/protobuf"
    ref = env["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "otlp-auth", "key": "headers"}


def test_config_flags_become_exporter_variables(chart: Any) -> None:
    objects = render(chart, ALL_ON)
    env = env_of(objects)
    assert env["REQUENCE_EXPORTER_MAX_TRACKED_TASKS"]["value"] == "50000"
    assert env["REQUENCE_EXPORTER_TASK_TTL"]["value"] == "12h"
    assert env["REQUENCE_EXPORTER_LOG_FORMAT"]["value"] == "json"
    assert env["TZ"]["value"] == "UTC"
    args = container(objects)["args"]
    assert args[0] == "run"
    assert args[-1] == "--since=15m"
    web = render(chart, {"config": {"web.config.file": "/etc/web/config.yml"}})
    assert env_of(web)["REQUENCE_EXPORTER_WEB_CONFIG_FILE"]["value"] == "/etc/web/config.yml"


# --- network policy and disruption budget -------------------------------------------------


def test_network_policy_admits_scrapes_and_reaches_dns_requence_and_otlp(chart: Any) -> None:
    objects = render(chart, ALL_ON)
    policy = only(objects, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_spec_labels(objects).items()
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": "http-metrics", "protocol": "TCP"}]
    assert ingress["from"] == ALL_ON["networkPolicy"]["ingressFrom"]
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (443, "TCP"), (4317, "TCP"), (4318, "TCP")} <= egress_ports
    no_otlp = render(chart, {"networkPolicy": {"enabled": True}})
    ports = {
        p["port"] for r in only(no_otlp, "NetworkPolicy")["spec"]["egress"] for p in r["ports"]
    }
    assert 4317 not in ports


PROMETHEUS_PODS = {
    "namespaceSelector": {},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def test_by_default_only_prometheus_pods_reach_the_pages(chart: Any) -> None:
    objects = render(chart)
    policy = only(objects, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": "http-metrics", "protocol": "TCP"}]
    assert ingress["from"] == [PROMETHEUS_PODS]
    # The port the policy names is the one the pages are served on.
    [port] = container(objects)["ports"]
    assert port["name"] == "http-metrics"


def test_an_empty_ingress_list_admits_no_one_so_the_render_fails(chart: Any) -> None:
    # An ingress rule without `from` would admit every source: [] must not mean that.
    with pytest.raises(helm.HelmRenderError, match=r"networkPolicy\.ingressFrom is empty"):
        render(chart, {"networkPolicy": {"ingressFrom": []}})


def test_allow_all_ingress_is_said_out_loud(chart: Any) -> None:
    objects = render(chart, {"networkPolicy": {"allowAllIngress": True, "ingressFrom": []}})
    [ingress] = only(objects, "NetworkPolicy")["spec"]["ingress"]
    assert "from" not in ingress
    assert not [o for o in render(chart, {"networkPolicy": {"enabled": False}})
                if o["kind"] == "NetworkPolicy"]  # fmt: skip


def test_disruption_budget_allows_a_drain_by_default(chart: Any) -> None:
    budget = only(render(chart, {"podDisruptionBudget": {"enabled": True}}), "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in budget["spec"]
    strict = render(chart, {"podDisruptionBudget": {"enabled": True, "minAvailable": 2}})
    assert only(strict, "PodDisruptionBudget")["spec"] == {
        "minAvailable": 2,
        "selector": only(strict, "PodDisruptionBudget")["spec"]["selector"],
    }


# --- web config: TLS and basic auth ------------------------------------------------------


def web_config_mount(objects: list[Manifest]) -> tuple[Path, dict[str, Any]]:
    """The file --web.config.file names, and the volume mounted where it lives."""
    exporter = container(objects)
    flags = [a for a in exporter["args"] if a.startswith("--web.config.file=")]
    assert len(flags) == 1
    path = Path(flags[0].split("=", 1)[1])
    mounts = {m["mountPath"]: m for m in exporter["volumeMounts"]}
    mount = mounts[str(path.parent)]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    return path, volumes[mount["name"]]


def probe_schemes(objects: list[Manifest]) -> set[str]:
    """The schemes of the liveness and readiness probes (HTTP when unset)."""
    exporter = container(objects)
    return {
        exporter[probe]["httpGet"].get("scheme", "HTTP")
        for probe in ("livenessProbe", "readinessProbe")
    }


def test_web_config_from_values_is_mounted_with_the_tls_secret(chart: Any) -> None:
    objects = render(chart, WEB)
    path, volume = web_config_mount(objects)
    sources = [s["secret"]["name"] for s in volume["projected"]["sources"]]
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    [own] = [name for name in sources if name in secrets]
    assert sources == [own, "requence-tls"]
    text = base64.b64decode(secrets[own]["data"][path.name]).decode()
    assert yaml.safe_load(text) == WEB["webConfig"]["config"]
    assert "REQUENCE_EXPORTER_WEB_CONFIG_FILE" not in env_of(objects)
    assert probe_schemes(objects) == {"HTTPS"}
    [endpoint] = only(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == SCRAPE_TLS
    assert endpoint["basicAuth"] == SCRAPE_AUTH


def test_the_exporter_accepts_the_mounted_web_config(chart: Any, tmp_path: Path) -> None:
    # Lay the projected volume out on disk as the kubelet would and load it like the exporter.
    openssl = require_tool("openssl")
    objects = render(chart, WEB)
    path, volume = web_config_mount(objects)
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    [own] = [
        secrets[s["secret"]["name"]]
        for s in volume["projected"]["sources"]
        if s["secret"]["name"] in secrets
    ]
    (tmp_path / path.name).write_bytes(base64.b64decode(own["data"][path.name]))
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt"),
         "-subj", "/CN=requence-exporter"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    loaded = load_web_config(tmp_path / path.name)
    assert loaded.ssl_context is not None
    assert dict(loaded.users) == {"prometheus": PW_HASH.encode()}


def test_basic_auth_without_tls_keeps_http(chart: Any) -> None:
    values = {
        "webConfig": {"enabled": True, "config": {"basic_auth_users": {"prometheus": PW_HASH}}},
        "serviceMonitor": {"enabled": True, "basicAuth": SCRAPE_AUTH, "tlsConfig": SCRAPE_TLS},
    }
    objects = render(chart, values)
    web_config_mount(objects)
    assert probe_schemes(objects) == {"HTTP"}
    [endpoint] = only(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert "scheme" not in endpoint
    assert "tlsConfig" not in endpoint
    assert endpoint["basicAuth"] == SCRAPE_AUTH


def test_web_config_from_an_existing_secret(chart: Any) -> None:
    web = {"enabled": True, "existingSecret": "web", "existingSecretKey": "web.yml", "tls": True}
    monitor = {"enabled": True, "tlsConfig": SCRAPE_TLS}
    objects = render(chart, {"webConfig": web, "serviceMonitor": monitor})
    assert not [o for o in objects if o["kind"] == "Secret"]
    path, volume = web_config_mount(objects)
    assert path.name == "web.yml"
    assert volume["projected"]["sources"] == [{"secret": {"name": "web"}}]
    assert probe_schemes(objects) == {"HTTPS"}
    [endpoint] = only(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert "basicAuth" not in endpoint
    # Without `tls` the chart cannot know what the existing Secret turns on.
    plain = render(chart, {"webConfig": {**web, "tls": None}})
    assert probe_schemes(plain) == {"HTTP"}


def test_tls_can_be_declared_off(chart: Any) -> None:
    values = copy.deepcopy(WEB)
    values["webConfig"]["tls"] = False
    objects = render(chart, values)
    assert probe_schemes(objects) == {"HTTP"}
    assert "scheme" not in only(objects, "ServiceMonitor")["spec"]["endpoints"][0]


def test_a_changed_web_config_rolls_the_pod(chart: Any) -> None:
    def checksum(user: str) -> str:
        web = {"enabled": True, "config": {"basic_auth_users": {user: PW_HASH}}}
        workload = only(render(chart, {"webConfig": web}), "Deployment")
        value: str = workload["spec"]["template"]["metadata"]["annotations"]["checksum/web-config"]
        return value

    assert checksum("one") != checksum("two")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"webConfig": {"enabled": True}}, "needs webConfig.existingSecret or webConfig.config"),
        (
            {
                "webConfig": {"enabled": True, "existingSecret": "web"},
                "config": {"web.config.file": "/etc/web.yml"},
            },
            "not config.web.config.file",
        ),
    ],
)
def test_web_config_mistakes_fail_the_render(
    chart: Any, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(chart, values)


def test_web_config_is_off_by_default(chart: Any) -> None:
    objects = render(chart, ALL_ON)
    assert not [a for a in container(objects)["args"] if a.startswith("--web.config.file")]
    assert probe_schemes(objects) == {"HTTP"}
    assert "web-config" not in {v["name"] for v in pod_spec(objects)["volumes"]}


# --- ServiceMonitor (a CRD: checked structurally) -----------------------------------------


def test_service_monitor_scrapes_the_metrics_port(chart: Any) -> None:
    objects = render(chart, ALL_ON)
    monitor = only(objects, "ServiceMonitor")
    service = only(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s"


# --- PrometheusRule from exporter/metrics/alerting
# ------------------------------------------------------

# An override for each kind of threshold; the regex and the URL carry characters that need
# escaping in PromQL and YAML strings.
OVERRIDES = {
    "number": 0.25,
    "factor": 2.5,
    "integer": 7,
    "duration": "7m",
    "promql_string": 'requence\\.exporter|"odd"',
    "text": "https://runbooks.example/requence?a=1&b=2",
}


# Windows and intervals that keep the SLO windows consistent (short below long, above the base).
WINDOW_OVERRIDES = {
    "slo_window": "7d",
    "slo_interval": "30s",
    "slo_long_interval": "2m",
    "slo_page_fast_long_window": "2h",
    "slo_page_slow_long_window": "7h",
    "slo_ticket_fast_long_window": "2d",
    "slo_ticket_slow_long_window": "4d",
}


def override_for(key: str) -> Any:
    """A value for threshold `key` that differs from its default."""
    value = WINDOW_OVERRIDES.get(key, OVERRIDES[THRESHOLD_KINDS[key]])
    assert value != THRESHOLDS[key]
    return value


def rule_file_groups() -> list[dict[str, Any]]:
    """The rule groups of grafana/alerts.yml."""
    groups: list[dict[str, Any]] = yaml.safe_load(RULE_FILE.read_text())["groups"]
    return groups


def chart_rules(
    thresholds: dict[str, Any] | None = None, job: str = JOB, disabled: list[str] | None = None
) -> list[dict[str, Any]]:
    """The rules command's file as the chart scopes it: every selector reads `job` only, and
    the job regex of the scrape alerts is that job."""
    # Quoted as Go's regexp.QuoteMeta does (Helm's regexQuoteMeta).
    quoted = re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", job)
    config = RuleConfig(thresholds={**(thresholds or {}), "exporter_job_regex": quoted})
    if disabled is not None:
        config.disabled = disabled
    return chart_scoped(config, job)


def rules_by_name(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every rule by its alert or record name."""
    return {rule.get("alert") or rule["record"]: rule for g in groups for rule in g["rules"]}


def alerts_by_name(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every alerting rule by its name."""
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_chart_files_are_current_with_grafana() -> None:
    # Regenerates the rule template from exporter/metrics/alerting/rules.py and the dashboards'
    # copies.
    for path, content in rendered_chart_files().items():
        data = content.encode() if isinstance(content, str) else content
        assert path.read_bytes() == data, f"{path}: run scripts/sync-chart-files"
    assert chart_files.main(["--check"]) == 0


def test_chart_files_check_reports_and_sync_fixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "files" / "alerts.tmpl.yml"
    leftover = tmp_path / "files" / "dashboards" / "gone.json"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("{}")
    monkeypatch.setattr(chart_files, "ROOT", tmp_path)
    monkeypatch.setattr(chart_files, "CHART", tmp_path)
    monkeypatch.setattr(chart_files, "rendered_chart_files", lambda: {target: "rules\n"})
    assert chart_files.main(["--check"]) == 1
    assert not target.exists()
    assert leftover.exists()
    assert chart_files.main([]) == 0
    assert target.read_text() == "rules\n"
    assert not leftover.exists()
    assert chart_files.main(["--check"]) == 0


def test_prometheus_rule_equals_the_rule_file_with_default_thresholds(chart: Any) -> None:
    # Names, expressions, for, labels and annotations: the whole rule file, scoped to the job.
    groups = rendered_groups(chart)
    assert groups == chart_rules()
    unscoped = copy.deepcopy(groups)
    for group in unscoped:
        for rule in group["rules"]:
            scope = f"namespace=~'{NAMESPACE}'"
            rule["expr"] = rule["expr"].replace(f"{{job='{JOB}', {scope}}}", "")
            rule["expr"] = rule["expr"].replace(f"{{{scope}, ", "{")
            rule["expr"] = rule["expr"].replace(f'job=~"{JOB}"', 'job=~".*requence-exporter.*"')
    assert unscoped == rule_file_groups()


# Unset, a burn-rate factor scales with slo_window (helper requence-exporter.burnRate).
DERIVED = {key for key in CHART_THRESHOLDS if key.endswith("_burn_rate")}


def test_values_thresholds_are_the_rule_defaults() -> None:
    thresholds = chart_values()["prometheusRule"]["thresholds"]
    defaults = {k: v for k, v in CHART_THRESHOLDS.items() if k not in DERIVED}
    assert list(thresholds.items()) == list(defaults.items())
    assert set(THRESHOLDS) - set(CHART_THRESHOLDS) == {"exporter_job_regex"}


def test_an_unset_factor_scales_with_the_window_as_the_rules_command_scales_it(
    chart: Any,
) -> None:
    for window in ("7d", "30d"):
        groups = rendered_groups(chart, {"thresholds": {"slo_window": window}})
        assert groups == chart_rules({"slo_window": window})
        fixed = {"slo_window": window, "slo_page_fast_burn_rate": 20}
        assert rendered_groups(chart, {"thresholds": fixed}) == chart_rules(fixed)


def test_deploy_doc_lists_every_threshold_with_its_default() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    table = doc.split("<!-- thresholds:start", 1)[1].split("<!-- thresholds:end -->", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| `([^`]*)` \|", table, re.M)
    assert rows == [(k, str(v)) for k, v in CHART_THRESHOLDS.items() if k not in DERIVED]


def test_schema_admits_exactly_the_threshold_keys() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    thresholds = schema["properties"]["prometheusRule"]["properties"]["thresholds"]
    assert thresholds["additionalProperties"] is False
    assert set(thresholds["properties"]) == set(CHART_THRESHOLDS)


@pytest.mark.slow
@pytest.mark.parametrize("key", list(CHART_THRESHOLDS))
def test_each_threshold_renders_like_the_rules_command(chart: Any, key: str) -> None:
    value = override_for(key)
    groups = rendered_groups(chart, {"thresholds": {key: value}, "disabledAlerts": []})
    assert groups == chart_rules({key: value}, disabled=[])
    assert groups != rendered_groups(chart, {"disabledAlerts": []})


def test_a_threshold_value_changes_only_its_alert(chart: Any) -> None:
    after = rules_by_name(
        rendered_groups(chart, {"thresholds": {"task_error_ratio": 0.25}, "disabledAlerts": []})
    )
    before = rules_by_name(rendered_groups(chart, {"disabledAlerts": []}))
    assert set(after) == set(before)
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {"RequenceTaskErrorRatioHigh"}
    assert (
        f"error_ratio:rate5m{{job='{JOB}', namespace=~'{NAMESPACE}'}} > 0.25\n"
        in after["RequenceTaskErrorRatioHigh"]["expr"]
    )
    assert before["RequenceTaskErrorRatioHigh"]["for"] == after["RequenceTaskErrorRatioHigh"]["for"]


def test_large_integer_thresholds_stay_integers(chart: Any) -> None:
    # Helm reads numbers as floats; a range like [1e+06s] would not parse.
    groups = rendered_groups(chart, {"thresholds": {"exporter_stall_seconds": 1000000}})
    assert groups == chart_rules({"exporter_stall_seconds": 1000000})
    assert "[1000000s]" in alerts_by_name(groups)["RequenceExporterStalled"]["expr"]


@pytest.mark.parametrize(
    "thresholds",
    [{"task_error_ratoi": 0.1}, {"task_error_for": "ten minutes"}, {"task_error_ratio": "high"}],
)
def test_schema_rejects_bad_thresholds(chart: Any, thresholds: dict[str, Any]) -> None:
    values = {"prometheusRule": {"enabled": True, "thresholds": thresholds}}
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def without_schema(tmp_path: Path) -> Path:
    """A copy of the chart without values.schema.json (helm --skip-schema-validation)."""
    unchecked = tmp_path / "requence-exporter"
    shutil.copytree(CHART_DIR, unchecked)
    (unchecked / "values.schema.json").unlink()
    return unchecked


def test_unknown_threshold_fails_the_render_without_the_schema_too(tmp_path: Path) -> None:
    # `helm install --skip-schema-validation` must not let a misspelt threshold through.
    unchecked = without_schema(tmp_path)
    values = {"prometheusRule": {"enabled": True, "thresholds": {"NoSuchThreshold": 1}}}
    with helm.Chart.load(unchecked) as loaded:
        assert rendered_groups(loaded) == chart_rules()
        with pytest.raises(helm.HelmRenderError, match="NoSuchThreshold"):
            loaded.render({**TOKEN, **values}, name=RELEASE, namespace=NAMESPACE)


def test_prometheus_rule_passes_promtool(chart: Any, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    overrides = {key: override_for(key) for key in CHART_THRESHOLDS}
    for index, extra in enumerate(({}, {"thresholds": overrides})):
        rules = tmp_path / f"rules-{index}.yml"
        rules.write_text(yaml.safe_dump({"groups": rendered_groups(chart, extra)}))
        result = subprocess.run(
            [promtool, "check", "rules", str(rules)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_disabled_alert_fails_the_render(chart: Any) -> None:
    with pytest.raises(helm.HelmRenderError, match="NoSuchAlert"):
        rendered_groups(chart, {"disabledAlerts": ["NoSuchAlert"]})


def test_alerts_can_be_disabled_and_labelled(chart: Any) -> None:
    names = list(alerts_by_name(chart_rules()))
    groups = rendered_groups(
        chart,
        {
            "disabledAlerts": ["RequenceTaskErrorRatioHigh", names[0]],
            "additionalAlertLabels": {"team": "platform"},
        },
    )
    alerts = alerts_by_name(groups)
    assert set(alerts) == set(names[1:])
    original = alerts_by_name(chart_rules())
    for name, rule in alerts.items():
        assert rule["labels"] == {**original[name].get("labels", {}), "team": "platform"}
    recorded = [r for r in rules_by_name(groups).values() if "record" in r]
    assert recorded
    assert all("team" not in rule.get("labels", {}) for rule in recorded)


# --- dashboards ----------------------------------------------------------------------------


def dashboard_sources() -> dict[str, str]:
    """Every dashboard JSON of grafana/dashboards/ by file name."""
    return {p.name: p.read_text() for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def test_dashboard_configmaps_carry_every_dashboard(chart: Any) -> None:
    values = copy.deepcopy(ALL_ON)
    values["dashboards"]["perRelease"] = False
    objects = render(chart, values)
    maps = [o for o in objects if o["kind"] == "ConfigMap"]
    carried: dict[str, str] = {}
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "Requence"}
        assert len(config_map["data"]) == 1
        carried.update(config_map["data"])
    sources = dashboard_sources()
    assert set(sources) == {
        "requence-tasks.json",
        "requence-nodes.json",
        "requence-exporter.json",
        "requence-slos.json",
    }
    assert carried == sources
    for name, text in carried.items():
        assert text.encode() == (DASHBOARD_DIR / name).read_bytes()
        assert json.loads(text)["uid"] == name.removesuffix(".json")


def dashboards_of(objects: list[Manifest]) -> dict[str, dict[str, Any]]:
    """The dashboards the ConfigMaps carry, parsed, by file name."""
    found: dict[str, dict[str, Any]] = {}
    for config_map in (o for o in objects if o["kind"] == "ConfigMap"):
        found.update({name: json.loads(text) for name, text in config_map["data"].items()})
    return found


def test_each_release_gets_its_own_dashboard_uids(chart: Any) -> None:
    # #11: two releases' sidecar ConfigMaps must not replace each other's dashboards (Grafana
    # keys them by uid), in one namespace or in two, and a uid fits Grafana's 40 characters.
    sources = {name: json.loads(text) for name, text in dashboard_sources().items()}
    installs = [
        render(chart, {"dashboards": {"enabled": True}}),
        render(chart, {"dashboards": {"enabled": True}}, name="other"),
        render(chart, {"dashboards": {"enabled": True}, "namespaceOverride": "team-b"}),
        render(chart, {"dashboards": {"enabled": True}, "namespaceOverride": "team-b"}),
    ]
    uids = [[d["uid"] for d in dashboards_of(objects).values()] for objects in installs]
    assert uids[2] == uids[3], "a release's uids are stable across upgrades"
    every = [uid for install in uids[:3] for uid in install]
    assert len(set(every)) == len(every) == 3 * len(sources)
    assert all(len(uid) <= 40 for uid in every)
    for name, dashboard in dashboards_of(installs[1]).items():
        source = sources[name]
        assert dashboard["uid"].startswith(source["uid"] + "-")
        assert dashboard["title"] == f"{source['title']} ({NAMESPACE}/other)"
        relinked = json.loads(
            re.sub(r"/d/([a-z-]+)-[0-9a-f]{8}/", r"/d/\1/", json.dumps(dashboard))
        )
        assert {**relinked, "uid": source["uid"], "title": source["title"]} == source


def test_every_dashboard_link_resolves_to_a_dashboard_of_the_same_release(chart: Any) -> None:
    """The SLO table's link to the Tasks dashboard (and any other `/d/<uid>/`) follows the
    per-release uids; without perRelease the shipped uids link to each other."""
    for per_release in (True, False):
        objects = render(chart, {"dashboards": {"enabled": True, "perRelease": per_release}})
        dashboards = dashboards_of(objects)
        uids = {d["uid"] for d in dashboards.values()}
        links = [
            uid
            for d in dashboards.values()
            for uid in re.findall(r"/d/([A-Za-z0-9_-]+)/", json.dumps(d))
        ]
        assert links, "the SLO dashboard links to the Tasks dashboard"
        assert set(links) <= uids, set(links) - uids


def test_dashboard_label_is_configurable(chart: Any) -> None:
    values = {"dashboards": {"enabled": True, "label": "dashboards", "labelValue": "requence"}}
    maps = [o for o in render(chart, values) if o["kind"] == "ConfigMap"]
    assert len(maps) == len(dashboard_sources())
    for config_map in maps:
        assert config_map["metadata"]["labels"]["dashboards"] == "requence"
        assert "grafana_dashboard" not in config_map["metadata"]["labels"]


# --- NOTES ---------------------------------------------------------------------------------


def test_notes_say_what_to_do_next(chart: Any) -> None:
    notes = chart.render(TOKEN, name=RELEASE, namespace=NAMESPACE)[
        "requence-exporter/templates/NOTES.txt"
    ]
    assert f"port-forward svc/{RELEASE}-requence-exporter" in notes
    assert "otlp.endpoint" in notes
    configured = chart.render(ALL_ON, name=RELEASE, namespace=NAMESPACE)
    assert "otlp.endpoint" not in configured["requence-exporter/templates/NOTES.txt"]


# --- rules scoped to the release (promtool runs grafana/alerts_test.yml on the chart's rules) ---


def rule_tests_for(job: str, rules: Path, neighbour: str | None = None) -> dict[str, Any]:
    """grafana/alerts_test.yml with its exporter's job renamed `job`, reading `rules`; with
    `neighbour`, every series of that exporter is repeated under the neighbour's job, and the
    expectations stay those of the exporter alone."""
    text = (ROOT / "grafana" / "alerts_test.yml").read_text()
    text = text.replace('job="requence-exporter"', f'job="{job}"')
    text = text.replace("job: requence-exporter", f"job: {job}")
    text = text.replace("job requence-exporter", f"job {job}")
    tests: dict[str, Any] = yaml.safe_load(text)
    tests["rule_files"] = [str(rules)]
    if neighbour is not None:
        for case in tests["tests"]:
            ours = [s for s in case["input_series"] if f'job="{job}"' in s["series"]]
            assert ours
            case["input_series"] += [
                {**s, "series": s["series"].replace(f'job="{job}"', f'job="{neighbour}"')}
                for s in ours
            ]
    return tests


def run_rule_tests(tests: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` on `tests`."""
    promtool = require_tool("promtool")
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    return subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("values", "job"),
    [
        ({}, JOB),
        ({"fullnameOverride": "metrics"}, "metrics"),
        ({"nameOverride": "requence"}, f"{RELEASE}-requence"),
        (
            {
                "serviceMonitor": {"enabled": True, "jobLabel": "team"},
                "commonLabels": {"team": "ops"},
            },
            "ops",
        ),
        ({"prometheusRule": {"job": "requence/scrape"}}, "requence/scrape"),
    ],
    ids=["release", "fullnameOverride", "nameOverride", "jobLabel", "job"],
)
def test_the_rules_page_for_this_release_and_not_for_a_neighbour(
    chart: Any, values: dict[str, Any], job: str, tmp_path: Path
) -> None:
    # #11: every alert of the rule file fires as its tests expect under the release's own job
    # (RequenceExporterDown too, whatever the names), and a second release's series, which the
    # default regex .*requence-exporter.* matches, change nothing: no alert, no recorded series.
    # alerts_test.yml's series carry no namespace (the two-namespace test covers that scope).
    extra = {"matchNamespace": False, **values.pop("prometheusRule", {})}
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rendered_groups(chart, extra, values)}))
    for neighbour in (None, "other-requence-exporter"):
        result = run_rule_tests(rule_tests_for(job, rules, neighbour), tmp_path)
        assert result.returncode == 0, f"neighbour={neighbour}\n{result.stdout}{result.stderr}"


@pytest.mark.slow
def test_the_neighbour_check_catches_unscoped_rules(tmp_path: Path) -> None:
    # The rule file itself reads every job: the neighbour's series make its alerts fire twice.
    # Its default job regex misses a release named by fullnameOverride.
    own = run_rule_tests(rule_tests_for("metrics", RULE_FILE), tmp_path)
    assert own.returncode != 0
    assert "RequenceExporterDown" in own.stdout + own.stderr
    rules = tmp_path / "unscoped.yml"
    # The default job regex matches both jobs: only the chart's scoping tells them apart.
    rules.write_text(yaml.safe_dump({"groups": render_rule_file(RuleConfig())["groups"]}))
    assert run_rule_tests(rule_tests_for(JOB, rules), tmp_path).returncode == 0
    neighbour = run_rule_tests(rule_tests_for(JOB, rules, "other-requence-exporter"), tmp_path)
    assert neighbour.returncode != 0
    assert "other-requence-exporter" in neighbour.stdout + neighbour.stderr


# --- numbers, required values and mistakes that fail the render ----------------------------


def test_large_numbers_reach_the_exporter_as_integers(chart: Any) -> None:
    # #11: Helm reads numbers as floats, which toString printed as 1e+06: exit 2 in the pod.
    values = {
        "config": {"max-tracked-tasks": 1000000, "max-event-bytes": 16777216},
        "otlp": {"resourceAttributes": {"service.instance.count": 2000000, "ratio": 0.25}},
        "terminationGracePeriodSeconds": 1000000,
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1000000},
    }
    objects = render(chart, values)
    assert only(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1000000
    env = env_of(objects)
    assert env["REQUENCE_EXPORTER_MAX_TRACKED_TASKS"]["value"] == "1000000"
    assert env["REQUENCE_EXPORTER_MAX_EVENT_BYTES"]["value"] == "16777216"
    attributes = env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    assert attributes == "ratio=0.25,service.instance.count=2000000"
    assert pod_spec(objects)["terminationGracePeriodSeconds"] == 1000000
    settings = pod_settings(objects, "pod")
    assert settings.max_tracked_tasks == 1000000
    assert settings.max_event_bytes == 16777216


@pytest.mark.parametrize(
    "values",
    [{}, {"requence": {"existingSecretKey": "token"}}, {"otlp": {"headers": "a=b"}}],
    ids=["defaults", "key-only", "otlp-only"],
)
def test_an_install_without_a_token_fails_naming_both_values(
    chart: Any, values: dict[str, Any]
) -> None:
    # #11: without a token the pod crash-loops; the install must fail instead.
    if "requence" not in values:
        values = {**values, "requence": {}}
    with pytest.raises(helm.HelmRenderError) as info:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert "requence.accessToken" in str(info.value)
    assert "requence.existingSecret" in str(info.value)


@pytest.mark.parametrize(
    "values",
    [
        {"config": {"access-token-file": "/var/run/requence/token"}},
        {
            "extraEnv": [
                {
                    "name": "REQUENCE_ACCESS_TOKEN",
                    "valueFrom": {"secretKeyRef": {"name": "a", "key": "b"}},
                }
            ]
        },
        {"extraEnvFrom": [{"secretRef": {"name": "requence-env"}}]},
    ],
    ids=["token-file", "extra-env", "env-from"],
)
def test_a_token_from_elsewhere_is_accepted(chart: Any, values: dict[str, Any]) -> None:
    objects = render(chart, {"requence": {}, **values})
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert only(objects, "Deployment")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"podLabels": {"app.kubernetes.io/instance": "other"}},
            "podLabels.app.kubernetes.io/instance",
        ),
        ({"podLabels": {"app.kubernetes.io/name": "x"}}, "podLabels.app.kubernetes.io/name"),
        (
            {"prometheusRule": {"enabled": True, "additionalAlertLabels": {"severity": "info"}}},
            "additionalAlertLabels.severity",
        ),
        (
            {"serviceMonitor": {"enabled": True, "interval": "30s", "scrapeTimeout": "1m"}},
            "scrapeTimeout",
        ),
        (
            {
                "webConfig": {"enabled": True, "existingSecret": "web", "tls": True},
                "serviceMonitor": {"enabled": True},
            },
            "serviceMonitor.tlsConfig",
        ),
        ({"serviceMonitor": {"enabled": True, "jobLabel": "team"}}, "jobLabel"),
        (
            {"prometheusRule": {"enabled": True, "thresholds": {"exporter_job_regex": ".*"}}},
            "prometheusRule.job",
        ),
    ],
    ids=[
        "podLabels-instance",
        "podLabels-name",
        "alert-severity",
        "scrape-timeout",
        "tls-without-ca",
        "job-label-missing",
        "job-regex",
    ],
)
def test_mistakes_fail_the_render_with_a_clear_message(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    # #11: each of these used to render a broken object. The schema is removed so that the
    # render-time checks are shown to hold on their own (helm --skip-schema-validation).
    unchecked = without_schema(tmp_path)
    with helm.Chart.load(unchecked) as loaded, pytest.raises(helm.HelmRenderError, match=message):
        loaded.render({**TOKEN, **values}, name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize(
    "values",
    [
        {"nameOverride": "Requence_Exporter"},
        {"fullnameOverride": "-x"},
        {"namespaceOverride": "Bad Namespace"},
        {"serviceMonitor": {"interval": "soon"}},
        {"serviceMonitor": {"sampleLimit": -1}},
        {"prometheusRule": {"job": "it's"}},
        {"persistence": {"emptyDir": {"sizeLimit": "lots"}}},
    ],
)
def test_schema_rejects_bad_convention_values(chart: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def test_name_override_is_checked_without_the_schema_too(tmp_path: Path) -> None:
    unchecked = without_schema(tmp_path)
    with helm.Chart.load(unchecked) as loaded:
        for key in ("nameOverride", "fullnameOverride"):
            with pytest.raises(helm.HelmRenderError, match=key):
                loaded.render({**TOKEN, key: "Bad_Name"}, name=RELEASE, namespace=NAMESPACE)


def test_alert_labels_are_added_beside_severity(chart: Any) -> None:
    groups = rendered_groups(chart, {"additionalAlertLabels": {"team": "platform"}})
    for rule in alerts_by_name(groups).values():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["labels"]["team"] == "platform"


# --- TLS scrapes and Secrets that roll the pod ----------------------------------------------


def test_tls_scrapes_verify_with_the_tls_secrets_ca_by_default(chart: Any) -> None:
    # #11: TLS on with an empty tlsConfig rendered `scheme: https` without a CA or server name.
    values = copy.deepcopy(WEB)
    values["serviceMonitor"]["tlsConfig"] = {}
    [endpoint] = only(render(chart, values), "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "requence-tls", "key": "ca.crt"}},
        "serverName": f"{JOB}.{NAMESPACE}.svc",
    }


def test_a_rotated_token_in_an_existing_secret_can_roll_the_pod(chart: Any) -> None:
    # #11: the checksum covers the chart's own Secret only; Reloader rolls for Secrets of yours.
    values = {
        "requence": {"existingSecret": "requence"},
        "otlp": {"headersSecret": {"name": "otlp-auth"}},
        "webConfig": {"enabled": True, "existingSecret": "web"},
    }
    plain = only(render(chart, values), "Deployment")
    assert "annotations" not in plain["metadata"]
    reloading = only(render(chart, {**values, "reloader": {"enabled": True}}), "Deployment")
    reload = reloading["metadata"]["annotations"]["secret.reloader.stakater.com/reload"]
    assert reload.split(",") == ["requence", "otlp-auth", "web"]
    sharded = render(chart, {**values, "reloader": {"enabled": True}, "sharding": {"shards": 2}})
    assert (
        only(sharded, "StatefulSet")["metadata"]["annotations"]
        == reloading["metadata"]["annotations"]
    )


# --- conventions -----------------------------------------------------------------------------


def test_conventions_render_where_users_expect_them(chart: Any) -> None:
    objects = render(chart, CONVENTIONS)
    for manifest in objects:
        if manifest["kind"] not in ("ServiceMonitor", "PrometheusRule", "ConfigMap"):
            assert manifest["metadata"]["namespace"] == "observability"
        assert manifest["metadata"]["labels"]["team"] == "platform"
    deployment = only(objects, "Deployment")
    assert deployment["metadata"]["annotations"] == {
        "example.com/owner": "platform",
        "secret.reloader.stakater.com/reload": "requence",
    }
    assert deployment["spec"]["revisionHistoryLimit"] == 5
    assert pod_spec_labels(objects)["team"] == "platform"
    pod = pod_spec(objects)
    assert pod["enableServiceLinks"] is False
    assert [c["name"] for c in pod["initContainers"]] == ["wait"]
    assert [c["name"] for c in pod["containers"]] == ["exporter", "sidecar"]
    assert pod["containers"][1]["args"] == [JOB]
    exporter = pod["containers"][0]
    assert exporter["startupProbe"] == {
        "httpGet": {"path": "/healthz", "port": "http-metrics"},
        "periodSeconds": 2,
        "timeoutSeconds": 5,
        "failureThreshold": 90,
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {"sizeLimit": "2Gi"}}
    assert volumes["scratch"] == {"name": "scratch", "emptyDir": {}}
    monitor = only(objects, "ServiceMonitor")
    assert monitor["metadata"]["annotations"] == {"example.com/owner": "platform"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["observability"]}
    assert monitor["spec"]["jobLabel"] == "team"
    assert monitor["spec"]["targetLabels"] == ["team"]
    assert monitor["spec"]["podTargetLabels"] == ["team"]
    assert monitor["spec"]["sampleLimit"] == 2000000
    # The rules follow the job the jobLabel gives.
    expr = alerts_by_name(only(objects, "PrometheusRule")["spec"]["groups"])
    assert 'job=~"platform"}' in expr["RequenceExporterDisconnected"]["expr"]


def test_defaults_limit_the_state_emptydir_and_start_up(chart: Any) -> None:
    objects = render(chart)
    _, volume = state_volume(objects)
    assert volume == {"name": "state", "emptyDir": {"sizeLimit": "1Gi"}}
    assert container(objects)["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pod_spec(objects)["enableServiceLinks"] is False
    assert only(objects, "Deployment")["spec"]["revisionHistoryLimit"] == 3
    off = render(chart, {"startupProbe": {"enabled": False}})
    assert "startupProbe" not in container(off)


def test_common_labels_cannot_replace_the_charts_own(tmp_path: Path, chart: Any) -> None:
    with pytest.raises(helm.HelmRenderError, match="commonLabels"):
        render(chart, {"commonLabels": {"app.kubernetes.io/instance": "x"}})


def test_chart_metadata_names_icon_home_and_sources() -> None:
    chart_yaml = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart_yaml["icon"].startswith("https://")
    assert chart_yaml["home"].startswith("https://")
    assert chart_yaml["sources"]
    assert all(s.startswith("https://") for s in chart_yaml["sources"])
    report = helm.lint(CHART_DIR, TOKEN, strict=True, namespace=NAMESPACE)
    assert report["messages"] == []
