"""OpenTelemetry set-up: tracer provider, exporter, sampler and instrumentation.

Configured from the standard ``OTEL_*`` settings. Export runs in a background thread with
bounded queues, so a collector that is down or slow never blocks or kills a worker. The
instrumentation of SQLAlchemy, httpx and Redis makes their spans children of the job's span
(SQLAlchemy process-wide; httpx and Redis per client, so ARQ's own polling is not traced).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

import httpx
from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes
from redis.asyncio import Redis

from jobs.exporters import EXPORT_TIMEOUT_S, metric_readers, span_processors
from jobs.settings import Settings

__all__ = [
    "configure_telemetry",
    "extract_context",
    "inject_headers",
    "instrument_http_client",
    "instrument_redis_client",
    "tracer",
]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_configured = False
_owned_by_worker = False


class DropOrphanClientSpans(Sampler):
    """Drops CLIENT spans that have no parent, and defers everything else to ``delegate``.

    A worker polls Redis several times a second; the Redis instrumentation would turn each
    poll into a trace of its own. Calls made inside a job have the job's span as parent and
    are kept.
    """

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        """Decide whether to record the span."""
        if kind is SpanKind.CLIENT:  # only those need their parent looked up here
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        """Describe the sampler."""
        return f"DropOrphanClientSpans{{{self._delegate.get_description()}}}"


def build_sampler(settings: Settings) -> Sampler:
    """The sampler named by ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``."""
    ratio = TraceIdRatioBased(settings.otel_traces_sampler_arg)
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(ratio),
    }
    return DropOrphanClientSpans(samplers[settings.otel_traces_sampler])


def configure_telemetry(
    settings: Settings,
    family: str,
    *,
    extra_processors: Sequence[SpanProcessor] = (),
    extra_metric_readers: Sequence[MetricReader] = (),
    owned_by_worker: bool = False,
    export_timeout_s: float = EXPORT_TIMEOUT_S,
) -> None:
    """Install the process's tracer and meter providers once; later calls do nothing.

    ``owned_by_worker``: the providers belong to this process's ARQ worker, which shuts them
    down when it stops (see :func:`shutdown_telemetry`). ``export_timeout_s``: how long one
    export may take, retries included.

    With ``OTEL_SDK_DISABLED=true`` nothing is installed and every span is a no-op. With
    ``METRICS_PORT`` set, a Prometheus scrape endpoint serves ``/metrics`` on that port.
    """
    global _configured, _owned_by_worker
    with _lock:
        if settings.otel_sdk_disabled or _configured:
            return
        _owned_by_worker = owned_by_worker
        resource = Resource.create(
            {
                SERVICE_NAME: settings.service_name(family),
                SERVICE_INSTANCE_ID: f"{socket.gethostname()}:{os.getpid()}",
            }
        )
        provider = TracerProvider(resource=resource, sampler=build_sampler(settings))
        for processor in [*span_processors(settings, export_timeout_s), *extra_processors]:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(
            MeterProvider(
                resource=resource,
                metric_readers=[
                    *metric_readers(settings, export_timeout_s),
                    *extra_metric_readers,
                ],
            )
        )
        _configured = True
        _instrument_libraries(settings)


def _instrument_libraries(settings: Settings) -> None:
    """Instrument SQLAlchemy process-wide (engines created afterwards included).

    ``OTEL_SEMCONV_STABILITY_OPT_IN`` (``http``, ``database``, their ``/dup`` forms) is handed
    to the instrumentations, which read it from the environment when first used.
    """
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    if settings.otel_semconv_stability_opt_in:
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = settings.otel_semconv_stability_opt_in

    instrumentor = SQLAlchemyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def instrument_redis_client(client: Redis) -> None:
    """Make every command of ``client`` a span under the current span.

    Only the clients jobs and producers use are instrumented, not ARQ's own: its polling and
    bookkeeping (a dozen commands per job) would cost a span each and belong to no trace.
    """
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(client)


def shutdown_telemetry() -> None:
    """Export what is pending and stop, in bounded time even if the collector is down.

    Each exporter gives up after ``EXPORT_TIMEOUT_S``; spans that cannot be sent are dropped.
    Providers installed by someone else (an application embedding a worker) are only flushed.
    """
    provider = trace.get_tracer_provider()
    if not _owned_by_worker:
        if isinstance(provider, TracerProvider):
            provider.force_flush(timeout_millis=EXPORT_TIMEOUT_S * 1000)
        return
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    meter_provider = metrics.get_meter_provider()
    if isinstance(meter_provider, MeterProvider):
        meter_provider.shutdown(timeout_millis=EXPORT_TIMEOUT_S * 1000)


_tracer: tuple[trace.TracerProvider, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    """The tracer the runtime opens its spans with (looked up once per tracer provider)."""
    global _tracer
    provider = trace.get_tracer_provider()
    cached = _tracer
    if cached is None or cached[0] is not provider:
        cached = _tracer = (provider, provider.get_tracer("jobs"))
    return cached[1]


def instrument_http_client(client: httpx.AsyncClient) -> None:
    """Make every request of ``client`` a span under the current job's span."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client)


def inject_headers() -> dict[str, str]:
    """The current trace context as propagation headers (``traceparent``, ``tracestate``, …)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(headers: dict[str, str] | None) -> Context | None:
    """The trace context a producer wrote into a job's headers, if any."""
    if not headers:
        return None
    return propagate.extract(headers)
