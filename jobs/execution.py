"""The per-job wrapper every try of every job runs in.

It opens the CONSUMER span (parented to, and linked with, the producer's context), validates
the arguments again, enforces the job's timeout, and applies its retry policy: a transient
failure before the last try becomes ``arq.Retry`` with a jittered backoff; anything else, the
last try's failure, a timeout and "max tries exceeded" are recorded in the failed-jobs table
and fail the job for good.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from jobs.constants import HEADERS_KWARG, MESSAGING_SYSTEM
from jobs.context import JobContext
from jobs.errors import JobArgumentsError, JobsError, PermanentJobError
from jobs.failures import record_failed_job
from jobs.redaction import Redactor
from jobs.registry import JobSpec
from jobs.telemetry import extract_context, tracer

__all__ = ["TIMEOUT_MARGIN", "JobFailed", "MaxTriesExceeded", "wrap"]

logger = logging.getLogger("jobs.job")

#: ARQ's own timeout is set this much above the job's, so the runtime's timeout fires first.
TIMEOUT_MARGIN = 5.0


class JobFailed(JobsError):
    """Raised to ARQ when a job failed for good; the cause is chained."""


class MaxTriesExceeded(PermanentJobError):
    """The job was started more often than its policy allows (earlier tries were cut off)."""


class JobTimeout(TimeoutError):
    """A try ran longer than the job's timeout."""


def _span_parent(headers: Any, mode: str) -> tuple[otel_context.Context, list[Link]]:
    producer = extract_context(headers if isinstance(headers, dict) else None)
    if producer is None:
        return otel_context.Context(), []
    producer_span = trace.get_current_span(producer).get_span_context()
    links = [Link(producer_span)] if producer_span.is_valid else []
    if mode == "link":
        return otel_context.Context(), links
    return producer, links


def wrap(spec: JobSpec, *, timeout: float) -> Callable[..., Awaitable[Any]]:
    """The ARQ coroutine that runs ``spec`` inside the runtime, each try limited to ``timeout``."""

    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        headers = kwargs.pop(HEADERS_KWARG, None)
        job_id: str = ctx["job_id"]
        try_number: int = ctx["job_try"]
        settings = ctx["settings"]
        parent, links = _span_parent(headers, settings.jobs_trace_parenting)
        attributes: dict[str, AttributeValue] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": spec.queue,
            "messaging.message.id": job_id,
            "messaging.arq.job.name": spec.name,
            "messaging.arq.job.try": try_number,
        }
        with tracer().start_as_current_span(
            f"process {spec.queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            return await _run_try(spec, ctx, args, kwargs, span, time_limit=timeout)

    run.__qualname__ = run.__name__ = spec.name
    return run


async def _run_try(
    spec: JobSpec,
    ctx: dict[str, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    span: trace.Span,
    *,
    time_limit: float,
) -> Any:
    job_id: str = ctx["job_id"]
    try_number: int = ctx["job_try"]
    redact: Redactor = ctx["redactor"]
    started = time.perf_counter()
    logger.info("job %s %s try %d started", spec.name, job_id, try_number)

    async def fail(exc: BaseException) -> JobFailed:
        message = redact(str(exc))
        span.set_attribute("error.type", type(exc).__qualname__)
        span.record_exception(exc, attributes={"exception.message": message})
        span.set_status(Status(StatusCode.ERROR, message[:200]))
        span_context = span.get_span_context()
        await record_failed_job(
            ctx["session_factory"],
            job_id=job_id,
            job_name=spec.name,
            queue=spec.queue,
            arguments=spec.masked(kwargs),
            error_type=type(exc).__qualname__,
            error_message=message,
            tries=try_number,
            trace_id=f"{span_context.trace_id:032x}" if span_context.is_valid else None,
        )
        logger.warning(
            "job %s %s failed for good after %d tries in %.3fs: %s: %s",
            spec.name,
            job_id,
            try_number,
            time.perf_counter() - started,
            type(exc).__qualname__,
            message,
        )
        return JobFailed(f"{type(exc).__qualname__}: {message}")

    if try_number > spec.retry.max_tries:
        raise await fail(
            MaxTriesExceeded(
                f"started {try_number} times, more than max_tries={spec.retry.max_tries}; "
                "earlier tries were interrupted"
            )
        )
    try:
        if args:
            raise JobArgumentsError(
                spec.name, [{"loc": ("args",), "msg": "positional arguments are not accepted"}]
            )
        arguments = spec.validate(kwargs)
    except JobArgumentsError as exc:
        raise await fail(exc) from None

    job_context = JobContext(
        job_id=job_id,
        job_name=spec.name,
        queue=spec.queue,
        try_number=try_number,
        max_tries=spec.retry.max_tries,
        enqueue_time=ctx["enqueue_time"],
        settings=ctx["settings"],
        engine=ctx["engine"],
        sessions=ctx["session_factory"],
        http=ctx["http"],
        pool=ctx["jobs_pool"],
    )
    try:
        deadline = asyncio.timeout(time_limit)
        try:
            async with deadline:
                result = await spec.function(job_context, **arguments)
        except TimeoutError as exc:
            if deadline.expired():
                raise JobTimeout(f"try {try_number} exceeded the {time_limit:g}s timeout") from exc
            raise
    except Exception as exc:
        if spec.retry.should_retry(exc, try_number):
            delay = spec.retry.delay(try_number, exc)
            span.set_attribute("messaging.arq.retry.scheduled", True)
            span.set_attribute("messaging.arq.retry.delay_s", round(delay, 3))
            span.add_event(
                "retry scheduled",
                {"error.type": type(exc).__qualname__, "retry.delay_s": round(delay, 3)},
            )
            logger.info(
                "job %s %s try %d failed (%s), retrying in %.2fs",
                spec.name,
                job_id,
                try_number,
                type(exc).__qualname__,
                delay,
            )
            raise Retry(defer=delay) from None
        raise await fail(exc) from None
    logger.info(
        "job %s %s try %d succeeded in %.3fs",
        spec.name,
        job_id,
        try_number,
        time.perf_counter() - started,
    )
    return result
