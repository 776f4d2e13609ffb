"""One job as the job page shows it: its report, payload or result, and its failure records.

The state, tries and outcome come from :meth:`jobs.control.JobHandle.report` (what the job
control API answers); the payload adds the arguments, the scheduled time and the trace id.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from arq.jobs import JobDef, JobResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import JobsPool
from jobs.control import JobReport, JobState
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
    result: str | None = None
    error: str | None = None
    abort_requested: bool = False
    arguments: dict[str, Any] | None = None
    trace_id: str | None = None
    problem: str | None = None
    failures: list[FailedJob] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether Redis or the failed-jobs table knows the job."""
        return self.status != "not_found" or bool(self.failures)

    @property
    def abortable(self) -> bool:
        """Whether the job waits or runs, and no abort was asked for yet."""
        waiting = (JobState.QUEUED, JobState.DEFERRED, JobState.IN_PROGRESS)
        return self.status in waiting and not self.abort_requested

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
    """The job's state, timings, masked arguments or result, error, trace id and failures."""
    handle = await pool.job(job_id)
    detail = JobDetail(job_id, JobState.NOT_FOUND.value)
    detail.failures = await list_failed_jobs(sessions, job_id=job_id, limit=20)
    report: JobReport | None = None
    info: JobDef | None = None
    try:
        report = await handle.report()
        info = await handle.info()
    except Exception as error:  # nothing from Redis is trusted
        detail.problem = f"unreadable payload or result: {type(error).__name__}"
    if report is not None:
        detail.status = report.state.value
        detail.name, detail.tries = report.name, report.try_number
        detail.enqueued_at, detail.finished_at = report.enqueued_at, report.finished_at
        detail.abort_requested = report.abort_requested
        if report.state == JobState.SUCCEEDED:
            detail.result = _shown_result(report.result, redact)
        if report.error_type is not None:
            detail.error = redact(f"{report.error_type}: {report.error_message}")
    if isinstance(info, JobDef) and not isinstance(info, JobResult):
        if info.score is not None:
            detail.scheduled_at = dt.datetime.fromtimestamp(info.score / 1000, dt.UTC)
        kwargs = info.kwargs if isinstance(info.kwargs, dict) else {}
        detail.arguments = masked_arguments(str(info.function), kwargs, redact)
        detail.trace_id = trace_id_of(kwargs)
    if isinstance(info, JobResult):
        detail.started_at = info.start_time
    if detail.trace_id is None and detail.failures:
        detail.trace_id = detail.failures[0].trace_id
    if detail.name is None and detail.failures:
        detail.name = detail.failures[0].job_name
    return detail
