"""Trace settings resolved from the standard `OTEL_*` variables."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from exporter.core.errors import ConfigError
from exporter.metrics.otlp_push import build_resource
from exporter.traces.otlp_config import TracingSettings
from exporter.traces.sink import TraceSink
from tests.pki import Pki
from tests.tools import require_tool


def test_off_without_an_endpoint_on_when_forced() -> None:
    assert TracingSettings.from_env({}).enabled is False
    forced = TracingSettings.from_env({}, force=True)
    assert forced.enabled is True
    assert forced.endpoint == "http://localhost:4318/v1/traces"
    assert TracingSettings.from_env({}, force=True).service_name == "requence"


@pytest.mark.parametrize(
    ("env", "protocol", "endpoint"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"},
            "http/protobuf",
            "http://otel:4318/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318/"},
            "http/protobuf",
            "http://otel:4318/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw.example/otlp"},
            "http/protobuf",
            "https://gw.example/otlp/v1/traces",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4318/custom/path",
            },
            "http/protobuf",
            "http://tempo:4318/custom/path",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            },
            "grpc",
            "http://otel:4317",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            "grpc",
            "http://jaeger:4317",
        ),
    ],
)
def test_endpoint_and_protocol(env: dict[str, str], protocol: str, endpoint: str) -> None:
    settings = TracingSettings.from_env(env)
    assert settings.enabled is True
    assert (settings.protocol, settings.endpoint) == (protocol, endpoint)


def test_headers_timeout_compression_and_resource() -> None:
    settings = TracingSettings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=generic",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "Api-Key=s%3Dcret, x-tenant = a",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,k8s.namespace.name=prod",
        }
    )
    assert settings.headers == (("api-key", "s=cret"), ("x-tenant", "a"))
    assert settings.timeout == 2.5  # milliseconds, as the specification says
    assert settings.compression == "gzip"
    assert settings.service_name == "from-attrs"
    assert dict(build_resource(settings).attributes) == {
        "service.name": "from-attrs",
        "k8s.namespace.name": "prod",
    }
    assert "s=cret" not in repr(settings)


def test_service_name_variable_wins() -> None:
    settings = TracingSettings.from_env(
        {"OTEL_SERVICE_NAME": "wf", "OTEL_RESOURCE_ATTRIBUTES": "service.name=other"}
    )
    assert settings.service_name == "wf"


def test_batch_settings() -> None:
    settings = TracingSettings.from_env(
        {
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500",
            "OTEL_BSP_SCHEDULE_DELAY": "250",
            "OTEL_BSP_EXPORT_TIMEOUT": "1000",
        }
    )
    assert settings.max_queue_size == 100
    assert settings.max_export_batch_size == 100  # never above the queue
    assert settings.schedule_delay == 0.25
    assert settings.export_timeout == 1.0
    defaults = TracingSettings.from_env({})
    assert (defaults.max_queue_size, defaults.max_export_batch_size) == (2048, 512)
    assert (defaults.schedule_delay, defaults.export_timeout) == (5.0, 30.0)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"},
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        ),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0"}, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "many"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "nan"}, "OTEL_BSP_SCHEDULE_DELAY"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "inf"}, "OTEL_BSP_SCHEDULE_DELAY"),
        ({"OTEL_BSP_EXPORT_TIMEOUT": "1e999"}, "OTEL_BSP_EXPORT_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "86400001"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "9" * 5000}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "1000001"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1_000"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "otel:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        TracingSettings.from_env(env)


@pytest.mark.parametrize("interval", ["0", "999", "-5", "nan", "inf"])
def test_a_metrics_push_interval_under_a_second_or_unbounded_is_refused(interval: str) -> None:
    from exporter.metrics.otlp_push import OtlpMetricsPusher
    from exporter.metrics.store import Metrics

    with pytest.raises(ConfigError, match="OTEL_METRIC_EXPORT_INTERVAL"):
        OtlpMetricsPusher(
            Metrics(),
            exporter=None,  # type: ignore[arg-type]  # never reached: refused before
            resource=build_resource(TracingSettings.from_env({})),
            environ={"OTEL_METRIC_EXPORT_INTERVAL": interval},
        )


@pytest.mark.slow
def test_sink_batch_settings_come_from_the_variables_then_the_defaults() -> None:
    env = {"OTEL_BSP_MAX_QUEUE_SIZE": "8", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    sink = TraceSink(TracingSettings.from_env(env, force=True))
    try:
        assert sink.max_queue_size == 8  # the variable
        assert sink.schedule_delay == 0.1  # the variable, in milliseconds
        assert sink.max_export_batch_size == 8  # the default 512, capped by the queue
        assert sink.export_timeout == 30.0  # the default
    finally:
        sink.shutdown()


def test_resource_puts_service_name_last_and_wins() -> None:
    settings = TracingSettings(
        service_name="wf", resource_attributes=(("team", "a"), ("service.name", "other"))
    )
    assert list(settings.resource().items()) == [("team", "a"), ("service.name", "wf")]


@pytest.mark.slow
def test_tls_files_and_insecure(pki: Pki) -> None:
    settings = TracingSettings.from_env(
        {
            "OTEL_EXPORTER_OTLP_CERTIFICATE": "/ignored/for/traces.pem",
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": str(pki.ca),
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(pki.client_cert),
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": str(pki.client_key),
            "OTEL_EXPORTER_OTLP_INSECURE": "TRUE",
        }
    )
    assert settings.certificate == str(pki.ca)
    assert settings.client_certificate == str(pki.client_cert)
    assert settings.client_key == str(pki.client_key)
    assert settings.insecure is True
    defaults = TracingSettings.from_env({})
    assert (defaults.certificate, defaults.client_certificate, defaults.client_key) == (
        None,
        None,
        None,
    )
    assert defaults.insecure is False


@pytest.mark.parametrize(
    ("files", "names"),
    [
        (
            {"OTEL_EXPORTER_OTLP_CERTIFICATE": "missing.pem"},
            "OTEL_EXPORTER_OTLP_CERTIFICATE=.* cannot read the file",
        ),
        ({"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": "key"}, "TRACES_CERTIFICATE=.* no PEM"),
        ({"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "client"}, "CLIENT_CERTIFICATE needs"),
        ({"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": "key"}, "TRACES_CLIENT_KEY needs"),
        (
            {
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "server",  # not the key's certificate
                "OTEL_EXPORTER_OTLP_CLIENT_KEY": "key",
            },
            "CLIENT_CERTIFICATE=.* and OTEL_EXPORTER_OTLP_CLIENT_KEY=.* are not",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "client",
                "OTEL_EXPORTER_OTLP_CLIENT_KEY": "encrypted",
            },
            "unencrypted private key",
        ),
        ({"OTEL_EXPORTER_OTLP_TRACES_INSECURE": "yes"}, "OTEL_EXPORTER_OTLP_TRACES_INSECURE"),
    ],
)
def test_bad_tls_settings_name_the_variable_and_never_the_secret(
    pki: Pki, tmp_path: Path, files: dict[str, str], names: str
) -> None:
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        [require_tool("openssl"), "pkey", "-in", str(pki.client_key), "-aes256",
         "-passout", "pass:secret", "-out", str(encrypted)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    paths = {
        "client": str(pki.client_cert),
        "server": str(pki.server_cert),
        "key": str(pki.client_key),
        "encrypted": str(encrypted),
        "missing.pem": str(tmp_path / "missing.pem"),
    }
    env = {name: paths.get(value, value) for name, value in files.items()}
    with pytest.raises(ConfigError, match=names) as raised:
        TracingSettings.from_env(env)
    secret = pki.client_key.read_text().splitlines()[1]
    assert secret not in str(raised.value)
