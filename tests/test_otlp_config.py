"""Trace settings resolved from the standard `OTEL_*` variables."""

from __future__ import annotations

import pytest

from exporter.errors import ConfigError
from exporter.otlp_config import TracingSettings
from exporter.traces import TraceSink, build_resource


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
        ({"OTEL_BSP_SCHEDULE_DELAY": "nan"}, "OTEL_BSP_SCHEDULE_DELAY"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "otel:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        TracingSettings.from_env(env)


def test_sink_batch_settings_argument_then_env_then_default() -> None:
    env = {"OTEL_BSP_MAX_QUEUE_SIZE": "64", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    sink = TraceSink(TracingSettings(enabled=True), max_queue_size=8, environ=env)
    try:
        assert sink.max_queue_size == 8  # the argument
        assert sink.schedule_delay == 0.1  # the variable
        assert sink.max_export_batch_size == 8  # the default 512, capped by the queue
        assert sink.export_timeout == 30.0  # the default
    finally:
        sink.shutdown()
