"""What a running job receives: its identity and the worker's shared clients."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.outcomes import ReportedOutcome
from jobs.redaction import Redactor
from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.client import JobsPool

__all__ = ["JobContext"]


@dataclass(frozen=True, kw_only=True)
class JobContext:
    """The first argument of every job function."""

    job_id: str
    job_name: str
    queue: str
    try_number: int
    max_tries: int
    enqueue_time: dt.datetime
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    pool: JobsPool
    #: What the job reported about its own work (see :meth:`report_failure`).
    reported: ReportedOutcome = field(default_factory=ReportedOutcome, compare=False)

    def redact(self, text: str) -> str:
        """``text`` with every configured secret masked: for error texts a job stores or returns.

        An upstream may echo a key or client secret in its error message; a job passes such text
        through here before it writes it to a table, a result or a log line.
        """
        return Redactor(self.settings)(text)

    @property
    def is_last_try(self) -> bool:
        """Whether a failure now would be final."""
        return self.try_number >= self.max_tries

    def report_failure(self, error_type: str, message: str) -> None:
        """End this try as a failure of the job's work, though the function returns normally.

        For outcomes that retrying cannot change (an e-mail bounced, an AI run failed): the
        span, metrics, failed-jobs table and ``status`` show the job as failed with
        ``error_type`` (a short bounded name such as ``EmailBounced``); the function's result
        is still returned and the job is not retried. See :mod:`jobs.outcomes`.
        """
        self.reported.report(error_type, message)
