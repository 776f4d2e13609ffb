"""The per-job wrapper every try of every job runs in.

It opens the CONSUMER span (parented to, and linked with, the producer's context), validates
the arguments again, enforces the job's timeout, and applies its retry policy: a transient
failure before the last try becomes ``arq.Retry`` with a jittered backoff; anything else, the
last try's failure, a timeout and "max tries exceeded" are recorded in the failed-jobs table
and fail the job for good. A failure the job reports about its own work
(:meth:`JobContext.report_failure`) ends the try the same way, but the job's result is kept.

A try that fails because the database is unreachable (:mod:`jobs.db.outage`) is not counted
against ``max_tries``: the job waits for the database (:mod:`jobs.outage_wait`) for up to
``DATABASE_OUTAGE_RETRY_SECONDS``, and its span shows each wait as an event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from jobs.constants import ABORT_KEY_PREFIX, HEADERS_KWARG, MESSAGING_SYSTEM
from jobs.context import JobContext
from jobs.db.outage import DATABASE, is_database_unreachable
from jobs.errors import JobArgumentsError, JobsError, PermanentJobError
from jobs.failures import record_failed_job, root_cause
from jobs.metrics import CURRENT_JOB, METRICS
from jobs.outage_wait import OutageWait
from jobs.outcomes import DomainFailure
from jobs.redaction import Redactor
from jobs.registry import JobSpec
from jobs.telemetry import extract_context, tracer

__all__ = ["TIMEOUT_MARGIN", "JobFailed", "MaxTriesExceeded", "wrap"]

logger = logging.getLogger("jobs.job")

#: ARQ's own timeout is set this much above the job's, so the runtime's timeout fires first.
TIMEOUT_MARGIN = 5.0
#: Seconds a cancelled try waits to learn from Redis whether it was aborted.
ABORT_CHECK_TIMEOUT = 2.0


class JobFailed(JobsError):
    """Raised to ARQ when a job failed for good; the cause is chained.

    ARQ keeps it as the job's result; ``error_type`` and ``error_message`` are stored with it,
    so that a producer's ``result()`` raises :class:`jobs.errors.JobFailedError` with both.
    """

    def __init__(self, error_type: str, error_message: str) -> None:
        self.error_type = error_type
        self.error_message = error_message
        super().__init__(f"{error_type}: {error_message}")


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


class _Try:
    """One try of one job: its span, its log lines, its metrics, its failure record."""

    def __init__(
        self, spec: JobSpec, ctx: dict[str, Any], kwargs: dict[str, Any], span: trace.Span
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.kwargs = kwargs
        self.span = span
        self.job_id: str = ctx["job_id"]
        #: This try's number among the ordinary ones (tries spent waiting for the database
        #: are not counted; see :mod:`jobs.outage_wait`).
        self.try_number: int = ctx["job_try"]
        self.redact: Redactor = ctx["redactor"]
        self.started = time.perf_counter()

    def fields(self, **more: Any) -> dict[str, Any]:
        """The job's fields for a structured log line."""
        return {
            "job_id": self.job_id,
            "job": self.spec.name,
            "queue": self.spec.queue,
            "try": self.try_number,
            **more,
        }

    def finish(self, outcome: str, error_type: str | None = None, **more: Any) -> None:
        """Log the end of the try and count it (``error_type`` unless it succeeded)."""
        seconds = time.perf_counter() - self.started
        counted = "retry" if outcome == "waiting" else outcome
        METRICS.try_finished(self.spec.queue, self.spec.name, counted, seconds, error_type)
        if error_type is not None:
            more["error_type"] = error_type
        level = logging.WARNING if outcome == "failure" else logging.INFO
        if outcome == "waiting":  # the outage is logged once, by jobs.db.outage
            level = logging.DEBUG
        logger.log(
            level,
            "job %s %s",
            self.spec.name,
            {
                "success": "succeeded",
                "retry": "will be retried",
                "waiting": "waits for the database",
                "failure": "failed",
                "aborted": "was aborted",
                "interrupted": "was interrupted and will run again",
            }[outcome],
            extra={"job": self.fields(outcome=outcome, duration_s=round(seconds, 6), **more)},
        )

    def retry(self, exc: BaseException) -> Retry:
        """Schedule another try after the policy's backoff."""
        delay = self.spec.retry.delay(self.try_number, exc)
        self.span.set_attribute("messaging.arq.retry.scheduled", True)
        self.span.set_attribute("messaging.arq.retry.delay_s", round(delay, 3))
        self.span.add_event(
            "retry scheduled",
            {"error.type": type(exc).__qualname__, "retry.delay_s": round(delay, 3)},
        )
        self.finish("retry", type(exc).__qualname__, retry_in_s=round(delay, 3))
        return Retry(defer=delay)

    def wait_for_database(self, exc: BaseException, elapsed: float, delay: float) -> Retry:
        """Schedule another try, not counted against max_tries, once the database may be back."""
        self.span.set_attribute("messaging.arq.retry.scheduled", True)
        self.span.set_attribute("messaging.arq.retry.delay_s", round(delay, 3))
        self.span.add_event(
            "waiting for the database",
            {
                "error.type": type(exc).__qualname__,
                "jobs.database.outage_s": round(elapsed, 3),
                "retry.delay_s": round(delay, 3),
            },
        )
        self.finish("waiting", type(exc).__qualname__, retry_in_s=round(delay, 3))
        return Retry(defer=delay)

    async def cancelled(self) -> None:
        """Log and trace a try cut off by an abort, or by its worker stopping."""
        if await self._abort_requested():
            self.span.set_attribute("messaging.arq.job.aborted", True)
            self.span.add_event("job aborted")
            self.finish("aborted")
        else:
            self.span.add_event("try interrupted")
            self.finish("interrupted")

    async def _abort_requested(self) -> bool:
        try:
            async with asyncio.timeout(ABORT_CHECK_TIMEOUT):
                return bool(await self.ctx["redis"].exists(f"{ABORT_KEY_PREFIX}{self.job_id}"))
        except Exception:
            return False

    async def fail(self, exc: BaseException) -> JobFailed:
        """Record a permanent failure (span, failed-jobs row, log, metric)."""
        message = self.redact(str(exc))
        error_type = type(exc).__qualname__
        stacktrace = "".join(traceback.format_exception(exc))
        self.span.record_exception(
            exc,
            attributes={
                "exception.message": message,
                "exception.stacktrace": self.redact(stacktrace),
            },
        )
        cause = root_cause(exc)
        await self.record_failure(
            error_type, message, None if cause is None else self.redact(cause)
        )
        return JobFailed(error_type, message)

    async def fail_domain(self, failure: DomainFailure, reported: int) -> None:
        """Record a failure the job reported about its work (it returned normally)."""
        message = self.redact(failure.message)
        self.span.add_event(
            "domain failure", {"error.type": failure.error_type, "jobs.failures": reported}
        )
        await self.record_failure(failure.error_type, message, None)

    async def record_failure(self, error_type: str, message: str, cause: str | None) -> None:
        """Span status and ``error.type``, failed-jobs row, log line and metrics of a failure."""
        self.span.set_attribute("error.type", error_type)
        self.span.set_status(Status(StatusCode.ERROR, message[:200]))
        span_context = self.span.get_span_context()
        await record_failed_job(
            self.ctx["session_factory"],
            job_id=self.job_id,
            job_name=self.spec.name,
            queue=self.spec.queue,
            arguments=self.redact.values(self.spec.masked(self.kwargs)),
            error_type=error_type,
            error_message=message,
            error_cause=cause,
            tries=self.try_number,
            dead_letters=self.ctx.get("dead_letters"),
            trace_id=f"{span_context.trace_id:032x}" if span_context.is_valid else None,
            span_id=f"{span_context.span_id:016x}" if span_context.is_valid else None,
        )
        self.finish("failure", error_type=error_type, error=message)


def _job_context(spec: JobSpec, ctx: dict[str, Any], try_number: int) -> JobContext:
    return JobContext(
        job_id=ctx["job_id"],
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


async def _run_try(
    spec: JobSpec,
    ctx: dict[str, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    span: trace.Span,
    *,
    time_limit: float,
) -> Any:
    attempt = _Try(spec, ctx, kwargs, span)
    waits = OutageWait(ctx["redis"], attempt.job_id, ctx["settings"])
    if attempt.try_number > 1:  # a first try has waited for nothing yet
        attempt.try_number -= await waits.tries()
    if "score" in ctx:
        METRICS.lag.record(
            max(0.0, time.time() - ctx["score"] / 1000),
            {"messaging.destination.name": spec.queue, "messaging.arq.job.name": spec.name},
        )
    logger.info("job %s started", spec.name, extra={"job": attempt.fields()})
    if attempt.try_number > spec.retry.max_tries:
        raise await attempt.fail(
            MaxTriesExceeded(
                f"started {attempt.try_number} times, more than max_tries="
                f"{spec.retry.max_tries}; earlier tries were interrupted"
            )
        )
    try:
        if args:
            raise JobArgumentsError(
                spec.name, [{"loc": ("args",), "msg": "positional arguments are not accepted"}]
            )
        arguments = spec.validate(kwargs)
    except JobArgumentsError as exc:
        raise await attempt.fail(exc) from None

    METRICS.running[spec.queue] += 1
    job_context = _job_context(spec, ctx, attempt.try_number)
    current_job = CURRENT_JOB.set(spec.name)
    try:
        deadline = asyncio.timeout(time_limit)
        try:
            async with deadline:
                result = await spec.function(job_context, **arguments)
        except TimeoutError as exc:
            if deadline.expired():
                message = f"try {attempt.try_number} exceeded the {time_limit:g}s timeout"
                raise JobTimeout(message) from exc
            raise
    except asyncio.CancelledError:
        await attempt.cancelled()
        raise
    except Exception as exc:
        if is_database_unreachable(exc):
            DATABASE.unreachable(exc)
            wait = await waits.another(exc)
            if wait is not None:
                raise attempt.wait_for_database(exc, *wait) from None
        if spec.retry.should_retry(exc, attempt.try_number):
            raise attempt.retry(exc) from None
        raise await attempt.fail(exc) from None
    finally:
        METRICS.running[spec.queue] -= 1
        CURRENT_JOB.reset(current_job)
    await waits.forget()
    reported = job_context.reported
    if reported.failure is not None:
        await attempt.fail_domain(reported.failure, len(reported.failures))
    else:
        attempt.finish("success")
    return attempt.redact.values(result)
