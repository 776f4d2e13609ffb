"""Finished tries per family and minute, kept in Redis for dashboards: no cost per job.

Each worker counts its finished tries in memory (:data:`jobs.metrics.METRICS`); its heartbeat
adds what finished since the previous beat to the hash of the current minute,
``jobs:finished:<family>:<unix minute>`` (fields ``success``, ``retry``, ``failure``), which
expires after two hours. Readers sum the minutes they want: "completed in the last hour" and
jobs per minute read the same 60 hashes whichever worker, alive or gone, did the work.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from jobs.errors import UnknownJobError
from jobs.metrics import METRICS
from jobs.registry import get_job

__all__ = [
    "FINISHED_KEY_PREFIX",
    "OUTCOMES",
    "FinishedCounter",
    "FinishedTries",
    "finished_key",
    "finished_since",
]

#: Prefix of the per-minute hashes: ``jobs:finished:<family>:<unix minute>``.
FINISHED_KEY_PREFIX = "jobs:finished:"
#: How the tries of a job end (``jobs.outcome``).
OUTCOMES = ("success", "retry", "failure")
#: How long a minute's counts are kept.
RETENTION_SECONDS = 2 * 3600


def finished_key(family: str, minute: int) -> str:
    """The hash counting ``family``'s tries that finished in unix minute ``minute``."""
    return f"{FINISHED_KEY_PREFIX}{family}:{minute}"


def _family_of(job_name: str) -> str | None:
    try:
        return get_job(job_name).family
    except UnknownJobError:
        return None


class FinishedCounter:
    """Adds a family's tries finished since the last call to the current minute's hash."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._reported: Counter[str] = self._totals()

    def _totals(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (job_name, outcome), count in list(METRICS.outcomes.items()):
            if _family_of(job_name) == self.family:
                totals[outcome] += count
        return totals

    async def flush(self, redis: Redis, now: float | None = None) -> None:
        """Write the new counts (one round trip, none when nothing finished)."""
        totals = self._totals()
        new = {outcome: totals[outcome] - self._reported[outcome] for outcome in OUTCOMES}
        if not any(count > 0 for count in new.values()):
            return
        key = finished_key(self.family, int((time.time() if now is None else now) // 60))
        async with redis.pipeline(transaction=True) as pipe:
            for outcome, count in new.items():
                if count > 0:
                    pipe.hincrby(key, outcome, count)
            pipe.expire(key, RETENTION_SECONDS)
            await pipe.execute()
        self._reported = totals


@dataclass(frozen=True)
class FinishedTries:
    """Tries of one family that finished in a span of minutes, by outcome."""

    family: str
    minutes: int
    success: int
    retry: int
    failure: int

    @property
    def per_minute(self) -> float:
        """Finished tries per minute over the span."""
        return (self.success + self.retry + self.failure) / self.minutes


def _count(raw: Mapping[bytes, bytes], outcome: str) -> int:
    value = raw.get(outcome.encode(), b"0")
    try:
        return max(0, int(value))
    except ValueError:
        return 0  # nothing from Redis is trusted


async def finished_since(
    redis: Redis, families: list[str], minutes: int, now: float | None = None
) -> dict[str, FinishedTries]:
    """Per family, the tries finished in the last ``minutes`` minutes (the current one included)."""
    current = int((time.time() if now is None else now) // 60)
    span = range(current - minutes + 1, current + 1)
    async with redis.pipeline(transaction=False) as pipe:
        for family in families:
            for minute in span:
                pipe.hgetall(finished_key(family, minute))
        replies = await pipe.execute()
    result = {}
    for index, family in enumerate(families):
        hashes = replies[index * minutes : (index + 1) * minutes]
        sums = {outcome: sum(_count(raw, outcome) for raw in hashes) for outcome in OUTCOMES}
        result[family] = FinishedTries(family, minutes, **sums)
    return result
