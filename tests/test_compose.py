"""The compose stack (deploy/compose/): valid, wired together, and built from the project's files.

No Docker engine runs here, so each file is checked by the tool that reads it (the compose
specification's schema, `promtool check config` on the Prometheus configuration as the container
sees it) and the wiring between services is read from the files themselves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from exporter.metrics.exposition import Exemplar, exemplar_suffix
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "deploy" / "compose"
COMPOSE_FILE = STACK / "compose.yaml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DASHBOARDS = ROOT / "grafana" / "dashboards"


def binds(service: str) -> dict[str, Path]:
    """A service's bind mounts: container path -> host path (named volumes left out)."""
    mounts: dict[str, Path] = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (STACK / source).resolve()
    return mounts


def host_path(service: str, container_path: str) -> Path:
    """Where a path inside a service's container comes from on the host, through its binds."""
    for target, source in sorted(binds(service).items(), key=lambda item: -len(item[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / os.path.relpath(container_path, target)
    raise AssertionError(f"{container_path} is not mounted into {service}")


def flag(service: str, name: str) -> str:
    """The value of a `--name=value` (or `-name=value`) argument of a service's command."""
    for argument in SERVICES[service]["command"]:
        key, _, value = argument.partition("=")
        if key.lstrip("-") == name:
            return value
    raise AssertionError(f"{service} has no {name} argument")


def check_against_the_spec(path: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("check-jsonschema")
    return subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_file_validates_against_the_compose_spec() -> None:
    done = check_against_the_spec(COMPOSE_FILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_spec_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("\nservices:", "\nservice:"))
    assert check_against_the_spec(broken).returncode != 0


def test_the_whole_stack_is_there() -> None:
    assert set(SERVICES) == {"exporter", "prometheus", "alertmanager", "grafana", "tempo"}


def test_every_mounted_file_exists_and_none_is_a_copy() -> None:
    mounted = 0
    for service in SERVICES:
        for target, source in binds(service).items():
            assert source.exists(), f"{service}: {source} (mounted at {target}) is missing"
            assert ROOT in source.parents, f"{service}: {source} is outside the project"
            mounted += 1
    assert mounted >= 6
    # The rules and dashboards are the project's own, not copies under deploy/.
    assert host_path("prometheus", "/etc/prometheus/rules/requence-alerts.yml") == (
        ROOT / "grafana" / "alerts.yml"
    )
    assert not list(STACK.rglob("*.json"))
    assert not list(STACK.rglob("alerts*.yml"))


def test_the_exporter_is_built_from_the_dockerfile() -> None:
    build = SERVICES["exporter"]["build"]
    context = (STACK / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).is_file()


def test_images_are_pinned_to_versions() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not a version"


def test_prometheus_config_passes_promtool_as_the_container_sees_it(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    # Lay out /etc/prometheus as compose mounts it, so relative rule globs resolve the same.
    etc = tmp_path / "etc" / "prometheus"
    for target, source in binds("prometheus").items():
        assert target.startswith("/etc/prometheus/"), target
        staged = etc / os.path.relpath(target, "/etc/prometheus")
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, staged)
    config = etc / os.path.relpath(flag("prometheus", "config.file"), "/etc/prometheus")
    done = subprocess.run(
        [promtool, "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # The rules were found through the glob and checked too.
    assert "SUCCESS: 1 rule files found" in output
    assert re.search(r"SUCCESS: \d+ rules found", output)


def test_alertmanager_config_passes_amtool() -> None:
    amtool = require_tool("amtool")
    config = host_path("alertmanager", flag("alertmanager", "config.file"))
    done = subprocess.run(
        [amtool, "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "SUCCESS" in output


def test_prometheus_scrapes_the_exporter_keeps_exemplars_and_alerts() -> None:
    assert "exemplar-storage" in flag("prometheus", "enable-feature").split(",")
    config = yaml.safe_load(host_path("prometheus", flag("prometheus", "config.file")).read_text())
    listen = SERVICES["exporter"]["environment"]["REQUENCE_EXPORTER_LISTEN"]
    listen_port = listen.rpartition(":")[2]
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "requence-exporter"]
    assert job["static_configs"][0]["targets"] == [f"exporter:{listen_port}"]
    # Rules that select the exporter's job by a regex must select this job.
    rules = yaml.safe_load((ROOT / "grafana" / "alerts.yml").read_text())
    selectors = [
        match.group(1)
        for group in rules["groups"]
        for rule in group["rules"]
        for match in re.finditer(r'job=~"([^"]+)"', rule["expr"])
    ]
    assert selectors
    for selector in selectors:
        assert re.fullmatch(selector, job["job_name"]), selector
    [manager] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, _, port = manager.partition(":")
    assert host in SERVICES
    assert f"127.0.0.1:{port}:{port}" in SERVICES[host]["ports"]
    alertmanager = yaml.safe_load(
        host_path("alertmanager", flag("alertmanager", "config.file")).read_text()
    )
    receivers = {r["name"] for r in alertmanager["receivers"]}
    assert alertmanager["route"]["receiver"] in receivers


def test_spans_go_to_tempo_and_exemplars_link_to_it() -> None:
    environment = SERVICES["exporter"]["environment"]
    endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert endpoint.hostname == "tempo"
    tempo = yaml.safe_load(host_path("tempo", flag("tempo", "config.file")).read_text())
    receiver = tempo["distributor"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert receiver == f"0.0.0.0:{endpoint.port}"
    # Grafana reads Tempo on its HTTP port and turns the exporter's exemplar label into a link.
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    by_uid = {d["uid"]: d for d in sources["datasources"]}
    tempo_source = next(d for d in by_uid.values() if d["type"] == "tempo")
    assert urlsplit(tempo_source["url"]).port == tempo["server"]["http_listen_port"]
    prometheus = next(d for d in by_uid.values() if d["type"] == "prometheus")
    [link] = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    label = re.search(r"\{(\w+)=", exemplar_suffix(Exemplar("0" * 32, 1.0, 0.0)))
    assert label is not None
    assert link["name"] == label.group(1)
    assert by_uid[link["datasourceUid"]]["type"] == "tempo"


def test_provisioned_dashboards_are_the_ones_in_grafana_dashboards() -> None:
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    [provider] = providers["providers"]
    mounted = host_path("grafana", provider["options"]["path"])
    # The directory itself is mounted, so a dashboard added there is provisioned too.
    assert mounted == DASHBOARDS
    provisioned = sorted(p.name for p in mounted.glob("*.json"))
    assert provisioned == sorted(p.name for p in DASHBOARDS.glob("*.json"))
    assert provisioned
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path("grafana", home).is_file()


def test_every_datasource_a_dashboard_asks_for_is_provisioned() -> None:
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    types = {d["type"] for d in sources["datasources"]}
    for path in DASHBOARDS.glob("*.json"):
        variables = json.loads(path.read_text())["templating"]["list"]
        for variable in variables:
            if variable["type"] == "datasource":
                assert variable["query"] in types, f"{path.name}: {variable['name']}"


def test_grafana_needs_no_login_and_ports_stay_local() -> None:
    environment = SERVICES["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


@pytest.mark.parametrize(
    ("token", "expected"),
    [("", "demo --listen 0.0.0.0:9721 token="), ("abc", "run token=abc")],
)
def test_the_exporter_runs_demo_without_a_token_and_run_with_one(
    tmp_path: Path, token: str, expected: str
) -> None:
    service = SERVICES["exporter"]
    # A stand-in for the image's entry point, to see which command the script chooses.
    fake = tmp_path / "requence-exporter"
    fake.write_text('#!/bin/sh\necho "$*" "token=${REQUENCE_ACCESS_TOKEN:-}"\n')
    fake.chmod(0o755)
    [script] = service["command"]
    environment = {
        **{k: str(v) for k, v in service["environment"].items()},
        "REQUENCE_ACCESS_TOKEN": token,
        "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        [*service["entrypoint"], script.replace("$$", "$")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
