"""One job as the job page shows it: ARQ's status, payload or result, and its failure records."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from arq.jobs import JobDef, JobResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import JobsPool
from jobs.dashboard.queue_reader import masked_arguments, trace_id_of
from jobs.db.models import FailedJob
from jobs.failures import list_failed_jobs
from jobs.redaction import Redactor

__all__ = ["JobDetail", "read_job"]

#: Characters of a result shown on the page.
RESULT_CHARS = 20_000


@dataclass
class JobDetail:
    """What is known of one job id, in Redis and in the failed-jobs table."""

    job_id: str
    status: str
    name: str | None = None
    tries: int | None = None
    enqueued_at: dt.datetime | None = None
    scheduled_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    success: bool | None = None
    result: str | None = None
    arguments: dict[str, Any] | None = None
    trace_id: str | None = None
    problem: str | None = None
    failures: list[FailedJob] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether Redis or the failed-jobs table knows the job."""
        return self.status != "not_found" or bool(self.failures)

    @property
    def duration_s(self) -> float | None:
        """Seconds from the last try's start to the end, for a finished job."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def _shown_result(value: Any, redact: Redactor) -> str:
    if isinstance(value, BaseException):
        text = f"{type(value).__qualname__}: {value}"
    else:
        text = json.dumps(redact.values(value), indent=2, default=str, ensure_ascii=False)
    text = redact(text)
    return text if len(text) <= RESULT_CHARS else text[: RESULT_CHARS - 1] + "…"


async def read_job(
    pool: JobsPool, sessions: async_sessionmaker[AsyncSession], job_id: str, redact: Redactor
) -> JobDetail:
    """The job's status, timings, masked arguments or result, trace id and failure records."""
    job = await pool.job(job_id)
    detail = JobDetail(job_id, (await job.status()).value)
    detail.failures = await list_failed_jobs(sessions, job_id=job_id, limit=20)
    try:
        info = await job.info()
    except Exception as error:  # nothing from Redis is trusted
        info = None
        detail.problem = f"unreadable payload or result: {type(error).__name__}"
    if isinstance(info, JobDef):
        detail.name = str(info.function)
        detail.tries = info.job_try if isinstance(info.job_try, int) else None
        detail.enqueued_at = info.enqueue_time
        if info.score is not None:
            detail.scheduled_at = dt.datetime.fromtimestamp(info.score / 1000, dt.UTC)
        kwargs = info.kwargs if isinstance(info.kwargs, dict) else {}
        detail.arguments = masked_arguments(detail.name, kwargs, redact)
        detail.trace_id = trace_id_of(kwargs)
    if isinstance(info, JobResult):
        detail.started_at, detail.finished_at = info.start_time, info.finish_time
        detail.success = bool(info.success)
        detail.result = _shown_result(info.result, redact)
    if detail.trace_id is None and detail.failures:
        detail.trace_id = detail.failures[0].trace_id
    if detail.name is None and detail.failures:
        detail.name = detail.failures[0].job_name
    return detail
