"""Exporters from the standard ``OTEL_*`` settings, as the OpenTelemetry SDK specifies them.

- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: comma-separated ``otlp``, ``console``,
  ``none`` (metrics also ``prometheus``); ``otlp`` by default, as in the SDK.
- ``OTEL_EXPORTER_OTLP_PROTOCOL`` (and ``…_TRACES_PROTOCOL``, ``…_METRICS_PROTOCOL``):
  ``http/protobuf`` (default) or ``grpc``.
- ``OTEL_EXPORTER_OTLP_ENDPOINT``: for HTTP the base URL, ``/v1/traces`` and ``/v1/metrics``
  appended (default ``http://localhost:4318``); for gRPC the address itself (default
  ``http://localhost:4317``; ``http://`` means no TLS). ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
  and ``…_METRICS_ENDPOINT`` are used as they are.

Headers, certificates and compression (``OTEL_EXPORTER_OTLP_HEADERS`` …) are read by the
exporters themselves. Every export gives up after ``EXPORT_TIMEOUT_S`` and runs in a
background thread: a collector that is down never blocks or stops a worker, and it is reported
in one line when exports start failing and one when they work again (:mod:`jobs.export_watch`).
"""

from __future__ import annotations

import importlib
from typing import Any

from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from jobs.export_watch import ExportWatch, WatchedMetricExporter, WatchedSpanExporter
from jobs.settings import Settings

__all__ = [
    "EXPORT_TIMEOUT_S",
    "PROMETHEUS_DEFAULT_PORT",
    "metric_readers",
    "otlp_target",
    "span_processors",
]

#: How long one export may take, retries included, before its batch is dropped.
EXPORT_TIMEOUT_S = 2
#: Port of the Prometheus endpoint when ``OTEL_METRICS_EXPORTER=prometheus`` names no
#: ``METRICS_PORT`` (the SDK's default).
PROMETHEUS_DEFAULT_PORT = 9464
_DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}


def otlp_target(settings: Settings, signal: str) -> tuple[str, str]:
    """The protocol and endpoint URL of the OTLP exporter of ``signal`` (traces, metrics)."""
    protocol = getattr(settings, f"otel_exporter_otlp_{signal}_protocol") or (
        settings.otel_exporter_otlp_protocol
    )
    specific = getattr(settings, f"otel_exporter_otlp_{signal}_endpoint")
    if specific:
        return protocol, str(specific)
    base = settings.otel_exporter_otlp_endpoint or _DEFAULT_ENDPOINTS[protocol]
    if protocol == "grpc":
        return protocol, base
    return protocol, f"{base.rstrip('/')}/v1/{signal}"


#: The OTLP exporter class of each signal and protocol, imported only when used.
_OTLP_EXPORTERS = {
    ("traces", "http/protobuf"): "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    ("traces", "grpc"): "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    ("metrics", "http/protobuf"): "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    ("metrics", "grpc"): "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
}


def _otlp_exporter(settings: Settings, signal: str, timeout: float) -> Any:
    protocol, endpoint = otlp_target(settings, signal)
    module = importlib.import_module(_OTLP_EXPORTERS[(signal, protocol)])
    watch = ExportWatch(signal, endpoint)
    if signal == "traces":
        return WatchedSpanExporter(
            module.OTLPSpanExporter(endpoint=endpoint, timeout=timeout), watch
        )
    return WatchedMetricExporter(
        module.OTLPMetricExporter(endpoint=endpoint, timeout=timeout), watch
    )


def span_processors(
    settings: Settings, export_timeout_s: float = EXPORT_TIMEOUT_S
) -> list[SpanProcessor]:
    """One batching processor per exporter named by ``OTEL_TRACES_EXPORTER``."""
    processors: list[SpanProcessor] = []
    for name in settings.otel_traces_exporter.split(","):
        if name == "otlp":
            exporter = _otlp_exporter(settings, "traces", export_timeout_s)
            processors.append(BatchSpanProcessor(exporter))
        elif name == "console":
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
    return processors


def metric_readers(
    settings: Settings, export_timeout_s: float = EXPORT_TIMEOUT_S
) -> list[MetricReader]:
    """The readers of ``OTEL_METRICS_EXPORTER``, and a Prometheus endpoint on ``METRICS_PORT``."""
    readers: list[MetricReader] = []
    interval = settings.otel_metric_export_interval
    names = settings.otel_metrics_exporter.split(",")
    for name in names:
        if name == "otlp":
            exporter = _otlp_exporter(settings, "metrics", export_timeout_s)
            readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval))
        elif name == "console":
            readers.append(
                PeriodicExportingMetricReader(
                    ConsoleMetricExporter(), export_interval_millis=interval
                )
            )
    port = settings.metrics_port
    if port is None and "prometheus" in names:
        port = PROMETHEUS_DEFAULT_PORT
    if port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        start_http_server(port)
        readers.append(PrometheusMetricReader())
    return readers
