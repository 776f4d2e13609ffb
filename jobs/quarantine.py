"""Refused payloads: taken out of the queue, recorded as failed jobs, never executed.

A worker refuses what it cannot safely run: a payload that is not a valid envelope (see
:mod:`jobs.envelope`), too large, for an unknown job, or a queue entry ARQ itself would choke
on (see :mod:`jobs.intake`). Each refusal is a ``failed_jobs`` row with error type
``RefusedPayload``, the reason and the payload's size, a CONSUMER span with an error status,
a ``failure`` in ``jobs.processed`` and one warning line — so an operator sees it in
``python -m jobs failed list`` like any other failure.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from arq.worker import Function, func
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.constants import MESSAGING_SYSTEM, REFUSED_PAYLOAD_JOB
from jobs.dead_letters import DeadLetters
from jobs.execution import JobFailed
from jobs.failures import record_failed_job
from jobs.limits import MAX_JOB_ID_LENGTH
from jobs.metrics import METRICS
from jobs.redaction import Redactor
from jobs.registry import mask_secret_names
from jobs.storable import safe_data, safe_text
from jobs.telemetry import tracer

__all__ = ["REFUSED_ERROR_TYPE", "record_refused_payload", "refused_payload_function"]

logger = logging.getLogger("jobs.quarantine")

#: ``failed_jobs.error_type`` of every refused payload.
REFUSED_ERROR_TYPE: Final = "RefusedPayload"
#: ``failed_jobs.job_name`` when the payload did not say which job it was.
UNKNOWN_JOB_NAME: Final = "(unreadable)"


async def record_refused_payload(
    sessions: async_sessionmaker[AsyncSession],
    redactor: Redactor,
    *,
    queue: str,
    job_id: str | bytes,
    reason: str,
    size: int | None,
    job_name: str | None = None,
    arguments: Any = None,
    tries: int = 0,
    dead_letters: DeadLetters | None = None,
) -> str:
    """Record one refused payload (span, metric, log line, failed-job row); the message.

    Its arguments are kept for the operator with secrets masked, as a failed job's are. While
    the database is unreachable the row waits in ``dead_letters`` (Redis).
    """
    stored_id = safe_text(job_id, MAX_JOB_ID_LENGTH)
    name = safe_text(job_name, 200) if job_name else UNKNOWN_JOB_NAME
    message = reason if size is None else f"{reason}; payload {size} bytes"
    with tracer().start_as_current_span(
        f"process {queue}",
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": stored_id,
            "messaging.arq.job.name": REFUSED_PAYLOAD_JOB,
            "error.type": REFUSED_ERROR_TYPE,
        },
    ) as span:
        span.set_status(Status(StatusCode.ERROR, message[:200]))
        context = span.get_span_context()
        await record_failed_job(
            sessions,
            job_id=stored_id,
            job_name=name,
            queue=queue,
            arguments=redactor.values(safe_data(mask_secret_names(arguments)))
            if isinstance(arguments, dict)
            else {},
            error_type=REFUSED_ERROR_TYPE,
            error_message=message,
            tries=tries,
            trace_id=f"{context.trace_id:032x}" if context.is_valid else None,
            span_id=f"{context.span_id:016x}" if context.is_valid else None,
            dead_letters=dead_letters,
        )
    METRICS.try_finished(queue, REFUSED_PAYLOAD_JOB, "failure", 0.0)
    logger.warning(
        "refused payload %s on %s (never run): %s",
        stored_id,
        queue,
        message,
        extra={"job": {"job_id": stored_id, "queue": queue, "outcome": "refused"}},
    )
    return message


def refused_payload_function(queue: str) -> Function:
    """The ARQ function a worker's deserializer routes refused payloads to.

    ARQ runs it under the refused job's id, so ARQ itself removes the payload from the queue
    when it ends; it records the refusal and fails.
    """

    async def refused_payload(
        ctx: dict[str, Any], *, reason: str, size: int, job: str | None, arguments: Any
    ) -> None:
        message = await record_refused_payload(
            ctx["session_factory"],
            ctx["redactor"],
            queue=queue,
            job_id=ctx["job_id"],
            reason=reason,
            size=size,
            job_name=job,
            arguments=arguments,
            dead_letters=ctx.get("dead_letters"),
        )
        raise JobFailed(REFUSED_ERROR_TYPE, message)

    # ARQ counts tries of every function; a refusal is recorded whichever try it is.
    return func(refused_payload, name=REFUSED_PAYLOAD_JOB, max_tries=1_000_000, keep_result=3600)
