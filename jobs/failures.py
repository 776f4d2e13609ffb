"""The failed-jobs table: recording permanent failures, and what operators do with them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from opentelemetry.trace import Link, SpanContext, TraceFlags
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.models import FailedJob, utcnow
from jobs.db.outage import DATABASE, is_database_unreachable
from jobs.dead_letters import DeadLetter, DeadLetters, register_writer
from jobs.errors import JobsError
from jobs.registry import get_job
from jobs.storable import safe_data, safe_text
from jobs.telemetry import tracer

__all__ = [
    "count_failed_since",
    "get_failed_job",
    "list_failed_jobs",
    "purge_failed_jobs",
    "record_failed_job",
    "requeue_failed_job",
    "root_cause",
    "summary",
]

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 4000
MAX_CAUSE_LENGTH = 500
#: Length of the id, name, queue and error type columns.
MAX_ID_LENGTH = 200
#: Characters of the error shown per line by ``failed list``.
SUMMARY_LENGTH = 120


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def root_cause(exc: BaseException) -> str | None:
    """``Type: message`` of the innermost cause that says something, if it is not ``exc`` itself.

    Wrappers such as SQLAlchemy's ``DBAPIError`` put the driver's class path first in their
    message; the exception they wrap says what happened (``ConnectionDoesNotExistError:
    connection was closed in the middle of operation``). Causes without a message (a
    cancellation behind a timeout) are passed over.
    """
    found: BaseException | None = None
    seen = {id(exc)}
    current: BaseException | None = exc
    while current is not None:
        following = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
        if following is None or id(following) in seen:
            break
        seen.add(id(following))
        if _first_line(str(following)):
            found = following
        current = following
    if found is None:
        return None
    return f"{type(found).__qualname__}: {_first_line(str(found))}"[:MAX_CAUSE_LENGTH]


def summary(record: FailedJob, width: int = SUMMARY_LENGTH) -> str:
    """One line on why a job failed: its error type and the root cause (or first line)."""
    if record.error_cause:
        text = f"{record.error_type} <- {record.error_cause}"
    else:
        text = f"{record.error_type}: {_first_line(record.error_message)}"
    return text if len(text) <= width else text[: width - 1] + "…"


async def record_failed_job(
    sessions: async_sessionmaker[AsyncSession],
    *,
    job_id: str,
    job_name: str,
    queue: str,
    arguments: dict[str, Any],
    error_type: str,
    error_message: str,
    tries: int,
    trace_id: str | None,
    span_id: str | None = None,
    error_cause: str | None = None,
    dead_letters: DeadLetters | None = None,
) -> bool:
    """Store one permanent failure; returns False (and logs) if the database refused it.

    When the database is unreachable the record is kept in ``dead_letters`` (Redis) and
    written once it is back (:mod:`jobs.dead_letters`); True then too.

    ``arguments``, ``error_message`` and ``error_cause`` (the root cause, see
    :func:`root_cause`) must already have their secrets masked. Values from Redis are stored in
    a safe form (:mod:`jobs.storable`): bytes described, NUL and control characters escaped,
    long ids cut, so no payload can make the record itself fail.
    """
    record = FailedJob(
        job_id=safe_text(job_id, MAX_ID_LENGTH),
        job_name=safe_text(job_name, MAX_ID_LENGTH),
        queue=safe_text(queue, MAX_ID_LENGTH),
        arguments=safe_data(arguments) if isinstance(arguments, dict) else {},
        error_type=safe_text(error_type, MAX_ID_LENGTH),
        error_message=safe_text(error_message, MAX_MESSAGE_LENGTH, multiline=True),
        error_cause=safe_text(error_cause, MAX_CAUSE_LENGTH) if error_cause else None,
        tries=tries,
        trace_id=trace_id,
        span_id=span_id,
        failed_at=utcnow(),
    )
    try:
        async with sessions.begin() as session:
            session.add(record)
    except Exception as exc:  # the job is failing already; never let bookkeeping crash the worker
        if dead_letters is not None and is_database_unreachable(exc):
            DATABASE.unreachable(exc)
            if await dead_letters.keep(FAILED_JOB_KIND, _as_data(record)):
                logger.warning(
                    "failed job %s (%s) kept in Redis until the database is back",
                    record.job_id,
                    record.job_name,
                )
                return True
        logger.error(
            "could not record failed job %s (%s): %s",
            record.job_id,
            record.job_name,
            type(exc).__name__,
        )
        return False
    return True


#: Dead-letter kind of a failed-job record.
FAILED_JOB_KIND = "failed_job"
_COLUMNS = (
    "job_id",
    "job_name",
    "queue",
    "arguments",
    "error_type",
    "error_message",
    "error_cause",
    "tries",
    "trace_id",
    "span_id",
)


def _as_data(record: FailedJob) -> dict[str, Any]:
    data = {column: getattr(record, column) for column in _COLUMNS}
    data["failed_at"] = record.failed_at.isoformat()
    return data


async def _write_kept(session: AsyncSession, letter: DeadLetter) -> None:
    """Insert a failed-job record kept in Redis, unless an earlier drain inserted it."""
    data = dict(letter.data)
    failed_at = dt.datetime.fromisoformat(data.pop("failed_at"))
    written = await session.scalar(
        select(FailedJob.id).where(
            FailedJob.job_id == data["job_id"],
            FailedJob.failed_at == failed_at,
            FailedJob.error_type == data["error_type"],
        )
    )
    if written is None:
        session.add(FailedJob(**data, failed_at=failed_at))


register_writer(FAILED_JOB_KIND, _write_kept)


async def list_failed_jobs(
    sessions: async_sessionmaker[AsyncSession],
    *,
    limit: int = 50,
    offset: int = 0,
    job_name: str | None = None,
    queue: str | None = None,
    job_id: str | None = None,
) -> list[FailedJob]:
    """The newest failed-job records first (skipping ``offset``), optionally of one job or queue.

    ``job_id`` selects the records of one job (a job that failed, was requeued under the same
    id and failed again has several).
    """
    query = (
        select(FailedJob)
        .order_by(FailedJob.failed_at.desc(), FailedJob.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if job_id is not None:
        query = query.where(FailedJob.job_id == job_id)
    if job_name is not None:
        query = query.where(FailedJob.job_name == job_name)
    if queue is not None:
        query = query.where(FailedJob.queue == queue)
    async with sessions() as session:
        return list(await session.scalars(query))


async def get_failed_job(sessions: async_sessionmaker[AsyncSession], record_id: int) -> FailedJob:
    """One failed-job record; JobsError if there is none with that id."""
    async with sessions() as session:
        record = await session.get(FailedJob, record_id)
    if record is None:
        raise JobsError(f"no failed job with id {record_id}")
    return record


async def count_failed_since(
    sessions: async_sessionmaker[AsyncSession], since: dt.datetime
) -> dict[str, int]:
    """Failed jobs per queue since ``since``."""
    async with sessions() as session:
        rows = await session.execute(
            select(FailedJob.queue, func.count())
            .where(FailedJob.failed_at >= since)
            .group_by(FailedJob.queue)
        )
        return {queue: int(count) for queue, count in rows}


async def purge_failed_jobs(
    sessions: async_sessionmaker[AsyncSession], *, older_than: dt.timedelta | None = None
) -> int:
    """Delete failed-job records (those older than ``older_than``, or all); how many."""
    statement = delete(FailedJob)
    if older_than is not None:
        statement = statement.where(FailedJob.failed_at < utcnow() - older_than)
    async with sessions.begin() as session:
        result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def requeue_failed_job(
    sessions: async_sessionmaker[AsyncSession], pool: Any, record_id: int
) -> str:
    """Send a failed job back to its family's queue with its original arguments.

    The new job's trace links to the failed one. Refused when the record held secret arguments
    (they were masked and cannot be recovered) or was requeued already.
    """
    record = await get_failed_job(sessions, record_id)
    if record.requeued_job_id:
        raise JobsError(f"failed job {record_id} was requeued already as {record.requeued_job_id}")
    spec = get_job(record.job_name)
    secret = sorted(key for key in record.arguments if spec.is_secret_argument(key))
    if secret:
        raise JobsError(
            f"failed job {record_id} had secret arguments ({', '.join(secret)}) that were not "
            "stored; enqueue it anew with them"
        )
    links = []
    if record.trace_id and record.span_id:
        failed = SpanContext(
            int(record.trace_id, 16),
            int(record.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        links.append(Link(failed, {"jobs.link": "requeue of failed job"}))
    with tracer().start_as_current_span(f"requeue {record.job_name}", links=links):
        job = await pool.enqueue_job(record.job_name, **record.arguments)
    if job is None:
        raise JobsError(f"failed job {record_id} could not be enqueued")
    async with sessions.begin() as session:
        await session.execute(
            update(FailedJob)
            .where(FailedJob.id == record_id)
            .values(requeued_job_id=job.job_id, requeued_at=utcnow())
        )
    return str(job.job_id)
