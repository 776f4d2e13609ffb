"""Telemetry exports that fail say so once, when they start failing and when they recover.

The OTLP exporters of the SDK log two lines for every batch they cannot deliver ("Transient
error … retrying", then "Failed to export … batch"): a worker without its collector prints a
pair every few seconds, and a command such as ``python -m jobs enqueue`` prints them after its
output. Each OTLP exporter is wrapped here instead: the first failed export logs one warning
naming the signal, the endpoint and the reason (the exporter's own, or, when it gave up on a
connection error without one, what one connection attempt finds); the first export that
succeeds afterwards logs one line saying exports resumed. The SDK's own per-batch lines about
failed exports are dropped (:class:`SilenceExportRetries`); everything else it logs passes.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from jobs.availability import Availability

__all__ = [
    "EXPORTER_LOGGERS",
    "ExportWatch",
    "SilenceExportRetries",
    "WatchedMetricExporter",
    "WatchedSpanExporter",
    "probe",
    "silence_export_retries",
]

logger = logging.getLogger("jobs.telemetry")

#: The loggers through which the SDK's OTLP exporters report failed exports.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)
#: How the SDK's per-batch failure lines begin (the unformatted message).
_RETRY_LINES = ("Transient error", "Failed to export", "Shutdown in progress")
#: At most this much of the exporter's reason goes into the warning.
_REASON_CHARS = 200
#: How long the one connection attempt that explains a failure may take.
PROBE_TIMEOUT_S = 0.5
_DEFAULT_PORTS = {"http": 80, "https": 443}


def probe(endpoint: str) -> str:
    """Why an endpoint may not take exports, from one TCP connection attempt to it."""
    parts = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    host = parts.hostname or "localhost"
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 4317)
    except ValueError:
        return "the endpoint's port is not a number"
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return "it accepts connections but did not take the export"
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port}"
    except TimeoutError:
        return f"no answer from {host}:{port} within {PROBE_TIMEOUT_S} s"
    except socket.gaierror:
        return f"unknown host {host}"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"


class SilenceExportRetries(logging.Filter):
    """Drops the SDK's per-batch export failure lines, keeping the last one as the reason."""

    def __init__(self) -> None:
        super().__init__()
        self._reasons = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is logged: not when it reports one failed or retried export."""
        if isinstance(record.msg, str) and record.msg.startswith(_RETRY_LINES):
            if not record.msg.startswith("Shutdown in progress"):
                self._reasons.last = record.getMessage()
            return False
        return True

    def take_reason(self) -> str | None:
        """The last failure line this thread's exporter logged since the previous call."""
        reason: str | None = getattr(self._reasons, "last", None)
        self._reasons.last = None
        return reason


_silencer = SilenceExportRetries()
_installed = False
_install_lock = threading.Lock()


def silence_export_retries() -> SilenceExportRetries:
    """Attach the filter to the exporters' loggers (once per process) and return it."""
    global _installed
    with _install_lock:
        if not _installed:
            for name in EXPORTER_LOGGERS:
                logging.getLogger(name).addFilter(_silencer)
            _installed = True
    return _silencer


class ExportWatch:
    """Whether one signal's exports currently fail; logs each change of that state once."""

    def __init__(self, signal: str, endpoint: str) -> None:
        self.signal = signal
        self.endpoint = endpoint
        self.availability = Availability()
        self._lock = threading.Lock()  # exports of one signal may come from several threads
        self._silencer = silence_export_retries()

    def observe(self, succeeded: bool) -> None:
        """Record one export's result, logging when it differs from the previous one."""
        reason = self._silencer.take_reason()
        with self._lock:
            changed = (
                self.availability.answered() is not None
                if succeeded
                else self.availability.failed()
            )
        if not changed:
            return
        if succeeded:
            logger.info("telemetry: exporting %s to %s again", self.signal, self.endpoint)
            return
        if reason is None or "due to timeout, max retries" in reason:
            reason = probe(self.endpoint)
        logger.warning(
            "telemetry: cannot export %s to %s; they are dropped until it answers (%s)",
            self.signal,
            self.endpoint,
            reason[:_REASON_CHARS],
        )


class WatchedSpanExporter(SpanExporter):
    """An OTLP span exporter whose failures are reported by an :class:`ExportWatch`."""

    def __init__(self, delegate: SpanExporter, watch: ExportWatch) -> None:
        self._delegate = delegate
        self.watch = watch

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the delegate and report a change between failing and working."""
        result = self._delegate.export(spans)
        self.watch.observe(result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        """Shut the delegate down."""
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the delegate."""
        return self._delegate.force_flush(timeout_millis)


class WatchedMetricExporter(MetricExporter):
    """An OTLP metric exporter whose failures are reported by an :class:`ExportWatch`."""

    def __init__(self, delegate: MetricExporter, watch: ExportWatch) -> None:
        super().__init__(
            preferred_temporality=delegate._preferred_temporality,
            preferred_aggregation=delegate._preferred_aggregation,
        )
        self._delegate = delegate
        self.watch = watch

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export through the delegate and report a change between failing and working."""
        result = self._delegate.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self.watch.observe(result is MetricExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the delegate."""
        return self._delegate.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the delegate down."""
        self._delegate.shutdown(timeout_millis=timeout_millis, **kwargs)
