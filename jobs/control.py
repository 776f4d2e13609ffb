"""Job control for producers: a job's state, its result or error, and aborting it.

``pool.enqueue_job(...)`` and ``pool.job(job_id)`` return a :class:`JobHandle`, ARQ's
``Job`` with three differences:

- ``result()`` of a job that failed raises :class:`jobs.errors.JobFailedError` (with the
  error's type and message) and of an aborted job :class:`jobs.errors.JobAbortedError`,
  instead of ARQ's ``SerializationError`` around a dictionary;
- ``abort()`` works: a job still queued or deferred never runs, a running one is cancelled
  (workers run with ``allow_abort_jobs``) and its result records the abort;
- ``report()`` reads everything known about the job at once (:class:`JobReport`).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import (
    DeserializationError,
    Job,
    JobResult,
    JobStatus,
    SerializationError,
    deserialize_job,
    deserialize_result,
)
from arq.utils import timestamp_ms

from jobs.constants import ABORT_KEY_PREFIX, wake_key
from jobs.errors import JobAbortedError, JobFailedError, JobsError
from jobs.queue_scripts import WAKE_CAP

__all__ = ["ABORT_MARK_TTL", "JobHandle", "JobReport", "JobState", "outcome_error"]

#: Seconds an abort's mark is kept: longer than any job waits in a queue or runs.
ABORT_MARK_TTL = 7 * 24 * 3600
#: ARQ's name for the exception an aborted job's result holds.
ABORTED = "CancelledError"


class JobState(enum.StrEnum):
    """Where a job is: waiting, running, or finished one of three ways."""

    QUEUED = "queued"
    DEFERRED = "deferred"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    NOT_FOUND = "not_found"


def outcome_error(job_id: str, stored: object) -> JobsError:
    """The exception that a stored failed result (``{"error": …, "message": …}``) stands for."""
    if not isinstance(stored, dict):
        return JobFailedError(job_id, "UnknownError", "the stored result is not readable")
    if stored.get("error") == ABORTED:
        return JobAbortedError(job_id)
    error_type = stored.get("error_type", stored.get("error"))
    message = stored.get("error_message", stored.get("message"))
    return JobFailedError(job_id, str(error_type), str(message))


@dataclass(frozen=True)
class JobReport:
    """What is known about one job: name, state, tries, times, and result or error."""

    job_id: str
    state: JobState
    name: str | None = None
    try_number: int | None = None
    enqueued_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    abort_requested: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for a JSON answer)."""
        return {
            "job_id": self.job_id,
            "state": self.state.value,
            "name": self.name,
            "try": self.try_number,
            "enqueued_at": self.enqueued_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "abort_requested": self.abort_requested,
        }


def _started_tries(stored: bytes | None) -> int:
    """Tries started so far (ARQ's counter), 0 before the first or if unreadable."""
    try:
        return int(stored or 0)
    except ValueError:
        return 0


def _finished(job_id: str, info: JobResult) -> dict[str, Any]:
    if info.success:
        return {"state": JobState.SUCCEEDED, "result": info.result}
    error = outcome_error(job_id, info.result)
    if isinstance(error, JobAbortedError):
        return {"state": JobState.ABORTED}
    assert isinstance(error, JobFailedError)
    return {
        "state": JobState.FAILED,
        "error_type": error.error_type,
        "error_message": error.error_message,
    }


class JobHandle(Job):
    """ARQ's ``Job`` whose result, abort and report work as the module docstring says."""

    @property
    def abort_key(self) -> str:
        """The key of this job's abort mark."""
        return f"{ABORT_KEY_PREFIX}{self.job_id}"

    async def result(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - ARQ's signature
        *,
        poll_delay: float = 0.5,
        pole_delay: float | None = None,
    ) -> Any:
        """The job's result, waiting for it up to ``timeout`` seconds (forever by default).

        Raises :class:`JobFailedError` if the job failed, :class:`JobAbortedError` if it was
        aborted, ``TimeoutError`` when ``timeout`` passes, ``arq.jobs.ResultNotFound`` when
        the job is neither queued nor finished.
        """
        try:
            return await super().result(timeout, poll_delay=pole_delay or poll_delay)
        except DeserializationError:
            raise
        except SerializationError as error:
            raise outcome_error(self.job_id, error.args[0] if error.args else None) from None

    async def request_abort(self) -> bool:
        """Ask for the job to be aborted, without waiting; False if it is finished or unknown.

        A job that waits (queued or deferred) is made due at once so that a worker of its
        family takes it and records it aborted without running it; a running job is cancelled
        by its worker within a poll.
        """
        status = await self.status()
        if status in (JobStatus.complete, JobStatus.not_found):
            return False
        wake = wake_key(self._queue_name)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.abort_key, b"1", ex=ABORT_MARK_TTL)
            if status is JobStatus.deferred:
                pipe.zadd(self._queue_name, {self.job_id: 1})
            pipe.zadd(abort_jobs_ss, {self.job_id: timestamp_ms()})
            # an idle worker of the family polls now: it aborts the job at once
            pipe.lpush(wake, b"1")
            pipe.ltrim(wake, 0, WAKE_CAP - 1)
            await pipe.execute()
        return True

    async def abort(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - ARQ's signature
        poll_delay: float = 0.5,
    ) -> bool:
        """Abort the job and wait up to ``timeout`` seconds for a worker to record it.

        True if the job ended aborted; False if it finished otherwise first, is unknown, or
        no worker recorded the abort in time (it still will: the request stays).
        """
        if not await self.request_abort():
            return False
        try:
            await self.result(timeout, poll_delay=poll_delay)
        except JobAbortedError:
            return True
        except (JobsError, TimeoutError):
            return False
        return False

    async def report(self) -> JobReport:
        """Everything known about the job now (reads Redis, never waits).

        Every key is read in one transaction: a job finishing between two reads would
        otherwise seem to have vanished (its payload gone, its result not yet there).
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(result_key_prefix + self.job_id)
            pipe.exists(in_progress_key_prefix + self.job_id)
            pipe.get(job_key_prefix + self.job_id)
            pipe.zscore(self._queue_name, self.job_id)
            pipe.get(retry_key_prefix + self.job_id)
            pipe.exists(self.abort_key)
            result_raw, running, payload, score, started, aborting = await pipe.execute()
        abort_requested = bool(aborting)
        if result_raw is not None:
            finished = deserialize_result(result_raw, deserializer=self._deserializer)
            return JobReport(
                self.job_id,
                name=finished.function,
                try_number=finished.job_try,
                enqueued_at=finished.enqueue_time,
                finished_at=finished.finish_time,
                abort_requested=abort_requested,
                **_finished(self.job_id, finished),
            )
        if payload is None or (not running and score is None):
            return JobReport(self.job_id, JobState.NOT_FOUND, abort_requested=abort_requested)
        waiting = deserialize_job(payload, deserializer=self._deserializer)
        if running:
            state = JobState.IN_PROGRESS
        elif score > timestamp_ms():
            state = JobState.DEFERRED
        else:
            state = JobState.QUEUED
        return JobReport(
            self.job_id,
            state,
            name=waiting.function,
            try_number=_started_tries(started),
            enqueued_at=waiting.enqueue_time,
            abort_requested=abort_requested,
        )

    @classmethod
    def of(cls, job: Job) -> JobHandle:
        """The handle of an ARQ ``Job``."""
        return cls(
            job.job_id,
            job._redis,
            _queue_name=job._queue_name,
            _deserializer=job._deserializer,
        )
