"""The OTEL_* exporter variables mean what the OpenTelemetry SDK documents."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobs.errors import ConfigurationError
from jobs.exporters import otlp_target
from jobs.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test from an environment without OTEL_* variables."""
    import os

    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)


def test_with_no_variable_both_signals_go_to_the_local_collector_over_http() -> None:
    """The SDK's defaults: otlp exporters, http/protobuf, localhost:4318 with signal paths."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.otel_traces_exporter, settings.otel_metrics_exporter) == ("otlp", "otlp")
    assert otlp_target(settings, "traces") == ("http/protobuf", "http://localhost:4318/v1/traces")
    assert otlp_target(settings, "metrics") == (
        "http/protobuf",
        "http://localhost:4318/v1/metrics",
    )


def test_endpoint_alone_is_enough_and_grpc_uses_it_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT gets signal paths for HTTP and none for gRPC."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    settings = load_settings()
    assert otlp_target(settings, "traces") == ("http/protobuf", "http://collector:4318/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    assert otlp_target(load_settings(), "metrics") == ("grpc", "http://collector:4317")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert otlp_target(load_settings(), "traces") == ("grpc", "http://localhost:4317")


def test_signal_specific_variables_win_and_are_used_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """…_TRACES_ENDPOINT is not given a path; …_METRICS_PROTOCOL overrides the common one."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example:443/in")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")
    settings = load_settings()
    assert otlp_target(settings, "traces") == ("http/protobuf", "https://traces.example:443/in")
    assert otlp_target(settings, "metrics") == ("grpc", "http://collector:4318")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "http/json",
            "OTEL_EXPORTER_OTLP_PROTOCOL: Input should be 'http/protobuf' or 'grpc'",
        ),
        (
            "OTEL_TRACES_EXPORTER",
            "otlp,zipkin",
            "OTEL_TRACES_EXPORTER: unsupported exporter 'zipkin'; use otlp, console, none",
        ),
        (
            "OTEL_METRICS_EXPORTER",
            "jaeger",
            "OTEL_METRICS_EXPORTER: unsupported exporter 'jaeger'; use otlp, prometheus, "
            "console, none",
        ),
        (
            "OTEL_SEMCONV_STABILITY_OPT_IN",
            "http,messaging",
            "OTEL_SEMCONV_STABILITY_OPT_IN: unsupported opt-in 'messaging'; use http, "
            "http/dup, database, database/dup",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "collector:4317",
            "OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL",
        ),
    ],
)
def test_an_unsupported_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """Each unsupported value stops start-up with one line naming the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert str(error.value) == f"invalid configuration: {message}"


def test_the_cli_refuses_an_unsupported_protocol_in_one_line() -> None:
    """`python -m jobs status` with OTEL_EXPORTER_OTLP_PROTOCOL=http/json exits 2, one line."""
    finished = subprocess.run(
        [sys.executable, "-m", "jobs", "status"],
        env={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr.splitlines() == [
        "jobs: invalid configuration: OTEL_EXPORTER_OTLP_PROTOCOL: Input should be "
        "'http/protobuf' or 'grpc'"
    ]
