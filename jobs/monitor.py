"""What operators and dashboards read: queue state, live workers, family health.

Workers write a heartbeat record every ``WORKER_HEARTBEAT_INTERVAL`` seconds (expiring after
three missed beats) and sample their queue for the metrics; this module reads both, so callers
never poke at ARQ's Redis keys themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobs.constants import WORKER_KEY_PREFIX, queue_name
from jobs.families import is_family
from jobs.metrics import METRICS, QueueSample
from jobs.redis_link import RedisLink
from jobs.settings import Settings
from jobs.throughput import FinishedCounter

__all__ = [
    "FamilyHealth",
    "QueueStats",
    "WorkerInfo",
    "family_health",
    "heartbeat_key",
    "live_workers",
    "local_worker",
    "queue_stats",
    "run_heartbeat",
]

#: Seconds between tries of a heartbeat that Redis did not take.
RETRY_BEAT_SECONDS = 1.0


@dataclass(frozen=True)
class QueueStats:
    """One family's queue: jobs due and waiting, deferred, and the oldest due job's age."""

    family: str
    queue: str
    ready: int
    scheduled: int
    oldest_age_s: float


@dataclass(frozen=True)
class WorkerInfo:
    """One live worker process, from its last heartbeat (with its Redis outages so far)."""

    family: str
    host: str
    pid: int
    started_at: float
    last_heartbeat: float
    running: int
    succeeded: int
    retried: int
    failed: int
    redis_outages: int = 0
    last_redis_outage_s: float | None = None
    last_redis_outage_ended: float | None = None


@dataclass(frozen=True)
class FamilyHealth:
    """Whether a family has a live worker, and how fresh the newest heartbeat is."""

    family: str
    workers: int
    last_heartbeat_age_s: float | None

    @property
    def alive(self) -> bool:
        """At least one worker of the family has beaten recently."""
        return self.workers > 0


async def queue_stats(redis: Redis, family: str) -> QueueStats:
    """Read one family's queue from Redis."""
    queue = queue_name(family)
    now_ms = time.time() * 1000
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(queue, "-inf", now_ms)
        pipe.zcount(queue, f"({now_ms}", "+inf")
        pipe.zrangebyscore(queue, "-inf", now_ms, start=0, num=1, withscores=True)
        ready, scheduled, oldest = await pipe.execute()
    age = max(0.0, (now_ms - oldest[0][1]) / 1000) if oldest else 0.0
    return QueueStats(family, queue, int(ready), int(scheduled), round(age, 3))


async def live_workers(redis: Redis, family: str | None = None) -> list[WorkerInfo]:
    """Every worker whose heartbeat has not expired (of one family, or of all)."""
    pattern = f"{WORKER_KEY_PREFIX}{family or '*'}:*"
    keys = [key async for key in redis.scan_iter(match=pattern, count=500)]
    if not keys:
        return []
    workers = []
    for raw in await redis.mget(keys):
        if raw is None:
            continue
        try:
            workers.append(WorkerInfo(**json.loads(raw)))
        except (TypeError, ValueError):
            continue
    return sorted(workers, key=lambda w: (w.family, w.host, w.pid))


async def family_health(redis: Redis, family: str) -> FamilyHealth:
    """How alive one family's workers are."""
    workers = await live_workers(redis, family)
    newest = max((w.last_heartbeat for w in workers), default=None)
    age = None if newest is None else round(max(0.0, time.time() - newest), 3)
    return FamilyHealth(family, len(workers), age)


def _glob_literal(text: str) -> str:
    """``text`` as a literal in a Redis SCAN pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


async def local_worker(
    redis: Redis, family: str, *, host: str | None = None, pid: int | None = None
) -> WorkerInfo | None:
    """The freshest heartbeat of a ``family`` worker on ``host`` (this host by default).

    With ``pid``, only that process's record counts, so a live sibling on the same host never
    stands in for a hung worker. None when no such record exists (or it does not parse).
    """
    host = host or socket.gethostname()
    prefix = f"{WORKER_KEY_PREFIX}{family}:{host}:"
    if pid is not None:
        keys = [heartbeat_key(family, host, pid)]
    else:
        pattern = f"{_glob_literal(prefix)}*"
        keys = [key async for key in redis.scan_iter(match=pattern, count=500)]
    found = []
    for raw in await redis.mget(keys) if keys else []:
        try:
            found.append(WorkerInfo(**json.loads(raw)))
        except (TypeError, ValueError):
            continue
    return max(found, key=lambda worker: worker.last_heartbeat, default=None)


def _worker_record(family: str, started_at: float, link: RedisLink | None) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    for (_, outcome), count in METRICS.outcomes.items():
        outcomes[outcome] += count
    return asdict(
        WorkerInfo(
            family=family,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=started_at,
            last_heartbeat=time.time(),
            running=METRICS.running[queue_name(family)],
            succeeded=outcomes["success"],
            retried=outcomes["retry"],
            failed=outcomes["failure"],
            redis_outages=0 if link is None else link.outages,
            last_redis_outage_s=None if link is None else link.last_outage_s,
            last_redis_outage_ended=None if link is None else link.last_outage_ended,
        )
    )


def heartbeat_key(family: str, host: str | None = None, pid: int | None = None) -> str:
    """The heartbeat key of a worker process (the current one by default)."""
    return f"{WORKER_KEY_PREFIX}{family}:{host or socket.gethostname()}:{pid or os.getpid()}"


async def run_heartbeat(
    redis: Redis, family: str, settings: Settings, *, link: RedisLink | None = None
) -> None:
    """Beat, count finished tries and sample the queue until cancelled; then remove the beat.

    With the worker's ``link``, the record tells its Redis outages, and the first beat after an
    outage is written as soon as Redis is back.
    """
    if not is_family(family):
        raise ValueError(f"unknown family {family!r}")
    started_at = time.time()
    key = heartbeat_key(family)
    interval = settings.worker_heartbeat_interval
    finished = FinishedCounter(family)
    next_sample = 0.0
    try:
        while True:
            record = json.dumps(_worker_record(family, started_at, link))
            period = min(interval, settings.metrics_sample_interval)
            try:
                await redis.set(key, record, px=int(interval * 3000))
                await finished.flush(redis)
                if time.monotonic() >= next_sample:
                    stats = await queue_stats(redis, family)
                    METRICS.queues[stats.queue] = QueueSample(
                        stats.ready, stats.scheduled, stats.oldest_age_s
                    )
                    next_sample = time.monotonic() + settings.metrics_sample_interval
                METRICS.beat()
            except (RedisError, OSError):
                # Redis is away (the worker's loop reports it): beat again as soon as it is back
                period = min(period, RETRY_BEAT_SECONDS)
            await (asyncio.sleep(period) if link is None else link.pause(period))
    finally:
        with contextlib.suppress(RedisError, OSError):
            await finished.flush(redis)
            await redis.delete(key)
