"""Tracing for the commands of ``python -m jobs`` that enqueue jobs (``enqueue``, ``requeue``).

Such a command is a producer like any other: it opens the PRODUCER span and writes the trace
context into the job, so the worker's CONSUMER span joins the command's trace instead of
starting one of its own. The command exports as service ``jobs-cli`` (unless
``OTEL_SERVICE_NAME`` says otherwise) with the same ``OTEL_*`` settings as the workers, never
serves a Prometheus endpoint (a worker on the same host may hold the port), and flushes what
it recorded before it exits, each export giving up after ``COMMAND_EXPORT_TIMEOUT_S`` (a
collector that is down costs a command well under a second and one line per signal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jobs.settings import Settings

__all__ = ["CLI_FAMILY", "COMMAND_EXPORT_TIMEOUT_S", "command_telemetry"]

#: What ``service.name`` is derived from for commands: ``jobs-cli``.
CLI_FAMILY = "cli"
#: How long a command's export may take; shorter than the SDK's first retry back-off (~1 s), so
#: an unreachable collector is given up on at once instead of after a retry.
COMMAND_EXPORT_TIMEOUT_S = 0.75


@contextmanager
def command_telemetry(settings: Settings) -> Iterator[None]:
    """Trace and measure what runs inside, then export it before returning."""
    from jobs.telemetry import configure_telemetry, shutdown_telemetry

    exporters = [n for n in settings.otel_metrics_exporter.split(",") if n != "prometheus"]
    command_settings = settings.model_copy(
        update={"metrics_port": None, "otel_metrics_exporter": ",".join(exporters) or "none"}
    )
    configure_telemetry(
        command_settings,
        CLI_FAMILY,
        owned_by_worker=True,
        export_timeout_s=COMMAND_EXPORT_TIMEOUT_S,
    )
    try:
        yield
    finally:
        shutdown_telemetry()
