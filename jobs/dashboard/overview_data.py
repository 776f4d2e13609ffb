"""The overview's figures, from the readers the CLI's ``status`` uses and the finished counts."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.constants import queue_name
from jobs.failures import count_failed_since
from jobs.families import known_families
from jobs.monitor import WorkerInfo, live_workers, queue_stats
from jobs.outcome_report import DomainOutcomes, domain_outcomes
from jobs.throughput import finished_since

__all__ = ["FamilyRow", "Overview", "dashboard_families", "read_overview"]

#: Minutes over which the throughput is averaged.
THROUGHPUT_MINUTES = 5


def dashboard_families() -> list[str]:
    """The families the dashboard shows: the built-in ones and the backend's."""
    return list(known_families())


@dataclass(frozen=True)
class FamilyRow:
    """One family on the overview."""

    family: str
    queued: int
    deferred: int
    oldest_age_s: float
    running: int
    completed_1h: int
    failed_1h: int
    per_minute: float
    workers: list[WorkerInfo]


@dataclass(frozen=True)
class Overview:
    """Everything the overview shows, read at ``read_at`` (unix time)."""

    families: list[FamilyRow]
    outcomes: DomainOutcomes
    read_at: float

    @property
    def workers(self) -> list[WorkerInfo]:
        """Every live worker, family by family."""
        return [worker for row in self.families for worker in row.workers]


async def read_overview(redis: Redis, sessions: async_sessionmaker[AsyncSession]) -> Overview:
    """Queues, workers, finished and failed tries per family; the families' domain outcomes."""
    now = time.time()
    since = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(hours=1)
    families = dashboard_families()
    failed = await count_failed_since(sessions, since)
    hour = await finished_since(redis, families, 60, now)
    recent = await finished_since(redis, families, THROUGHPUT_MINUTES, now)
    rows = []
    for family in families:
        stats = await queue_stats(redis, family)
        workers = await live_workers(redis, family)
        rows.append(
            FamilyRow(
                family=family,
                queued=stats.ready,
                deferred=stats.scheduled,
                oldest_age_s=stats.oldest_age_s,
                running=sum(worker.running for worker in workers),
                completed_1h=hour[family].success,
                failed_1h=failed.get(queue_name(family), 0),
                per_minute=recent[family].per_minute,
                workers=workers,
            )
        )
    return Overview(rows, await domain_outcomes(sessions, since), now)
