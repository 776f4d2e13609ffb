"""A collector that is down is reported once, its return once; commands stay quiet and quick."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from jobs.export_watch import EXPORTER_LOGGERS, WatchedSpanExporter
from jobs.exporters import metric_readers, span_processors
from jobs.settings import Settings, load_settings
from tests.otlp_receiver import OtlpReceiver
from tests.processes import worker_environment
from tests.smtp_server import free_port


@pytest.fixture
def quiet_settings(tmp_path: Path, redis_url: str) -> Settings:
    """Settings with no exporter, the test Redis and an embedded database."""
    return load_settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        otel_traces_exporter="none",
        otel_metrics_exporter="none",
    )


def _telemetry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "jobs.telemetry"]


def _sdk_retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name in EXPORTER_LOGGERS]


def _span_exporter(settings: Settings) -> WatchedSpanExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=otlp`` builds (its batching processor left idle)."""
    (processor,) = span_processors(settings, export_timeout_s=0.5)
    exporter = processor.span_exporter  # type: ignore[attr-defined]
    assert isinstance(exporter, WatchedSpanExporter)
    return exporter


def test_spans_to_a_collector_that_is_down_warn_once_and_recovery_is_said_once(
    quiet_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Three failed span exports warn once, naming the endpoint; the first success says so once."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    settings = quiet_settings.model_copy(
        update={"otel_traces_exporter": "otlp", "otel_exporter_otlp_endpoint": endpoint}
    )
    exporter = _span_exporter(settings)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    caplog.set_level(logging.INFO)

    for n in range(3):
        with tracer.start_as_current_span(f"lost {n}"):
            pass
    lines = _telemetry_lines(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"telemetry: cannot export traces to {endpoint}/v1/traces;")
    assert "refused" in lines[0].lower()
    assert _sdk_retry_lines(caplog) == []

    with OtlpReceiver(port=port) as receiver:
        for n in range(2):
            with tracer.start_as_current_span(f"kept {n}"):
                pass
        assert [s.name for s in receiver.received()] == ["kept 0", "kept 1"]
    lines = _telemetry_lines(caplog)
    assert lines[1:] == [f"telemetry: exporting traces to {endpoint}/v1/traces again"]
    provider.shutdown()


def test_metrics_to_a_collector_that_is_down_warn_once(
    quiet_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Two failed metric exports give one warning naming the metrics endpoint and no SDK lines."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = quiet_settings.model_copy(
        update={
            "otel_metrics_exporter": "otlp",
            "otel_exporter_otlp_endpoint": endpoint,
            "metrics_port": None,
            "otel_metric_export_interval": 3_600_000,
        }
    )
    (reader,) = metric_readers(settings, export_timeout_s=0.5)
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("test").create_counter("jobs.test.count")
    caplog.set_level(logging.INFO)

    for _ in range(2):
        counter.add(1)
        reader.force_flush()
    lines = _telemetry_lines(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"telemetry: cannot export metrics to {endpoint}/v1/metrics;")
    assert _sdk_retry_lines(caplog) == []
    provider.shutdown()


def test_enqueue_with_the_collector_down_prints_one_line_per_signal(
    quiet_settings: Settings, tmp_path: Path
) -> None:
    """`python -m jobs enqueue` with no collector prints the job id and one line per signal."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = worker_environment(
        quiet_settings,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        LOG_FORMAT="text",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs",
            "enqueue",
            "send_email",
            "to=a@example.com",
            "subject=S",
            "text=T",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == 1  # the job id
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert f"cannot export traces to {endpoint}/v1/traces" in lines[0]
    assert f"cannot export metrics to {endpoint}/v1/metrics" in lines[1]
