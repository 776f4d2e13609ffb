"""What a running job receives: its identity and the worker's shared clients."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

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

    @property
    def is_last_try(self) -> bool:
        """Whether a failure now would be final."""
        return self.try_number >= self.max_tries
