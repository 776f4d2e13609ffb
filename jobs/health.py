"""``python -m jobs health``: whether workers beat, read from their heartbeat records.

Kept light (Redis and the heartbeat records only), because a container runs it as its health
check every few seconds: ``health --self FAMILY`` looks at that container's worker alone. While
Redis is unreachable, no heartbeat can be read: the command says so in one line (exit code 1);
once it is back, a worker's line tells its last Redis outage.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, replace

from redis.asyncio import Redis

from jobs.families import known_families
from jobs.monitor import WorkerInfo, family_health, local_worker
from jobs.redis_connection import close_sentinels, open_redis, redis_options
from jobs.settings import Settings

__all__ = ["Report", "health_report", "local_health_report"]


@dataclass(frozen=True)
class Report:
    """What a command prints, and its exit code."""

    text: str
    exit_code: int = 0


def _redis(settings: Settings) -> Redis:
    """A plain client for reading health records, with bounded connect and read times."""
    options = replace(redis_options(settings.redis_url), conn_timeout=5)
    return open_redis(options, Redis, socket_timeout=5)


async def _close(redis: Redis) -> None:
    await redis.aclose()
    await close_sentinels(redis)


def _outage_note(worker: WorkerInfo) -> str:
    """``; Redis was unreachable …`` for a worker that rode out an outage, else nothing."""
    if worker.last_redis_outage_s is None or worker.last_redis_outage_ended is None:
        return ""
    ago = max(0.0, time.time() - worker.last_redis_outage_ended)
    return (
        f"; Redis was unreachable for {worker.last_redis_outage_s:.1f}s until {ago:.0f}s ago "
        f"({worker.redis_outages} outage(s) since it started)"
    )


async def health_report(settings: Settings, families: list[str]) -> Report:
    """Exit code 0 when every named family (default: all) has a live worker."""
    redis = _redis(settings)
    try:
        lines, dead = [], []
        for family in families or known_families():
            health = await family_health(redis, family)
            if health.alive:
                lines.append(
                    f"{family}: {health.workers} worker(s), last heartbeat "
                    f"{health.last_heartbeat_age_s:.1f}s ago"
                )
            else:
                dead.append(family)
                lines.append(f"{family}: no live worker")
    finally:
        await _close(redis)
    return Report("\n".join(lines), 1 if dead else 0)


async def local_health_report(settings: Settings, families: list[str], pid: int | None) -> Report:
    """Exit code 0 when this host's worker of each named family beat recently.

    "Recently" is within two heartbeat intervals: one late beat is tolerated, a worker that
    stopped beating (hung, stopped, dead) is not, whatever its siblings on other hosts do.
    ``pid`` narrows the check to one process, for hosts that run several.
    """
    host, max_age = socket.gethostname(), 2 * settings.worker_heartbeat_interval
    who = f"host {host}" + (f", pid {pid}" if pid is not None else "")
    redis = _redis(settings)
    try:
        lines, dead = [], []
        for family in families:
            worker = await local_worker(redis, family, host=host, pid=pid)
            age = None if worker is None else max(0.0, time.time() - worker.last_heartbeat)
            if worker is not None and age is not None and age <= max_age:
                lines.append(
                    f"{family}: worker {worker.pid} on {host}, last heartbeat {age:.1f}s ago"
                    + _outage_note(worker)
                )
                continue
            dead.append(family)
            lines.append(
                f"{family}: no heartbeat from the worker ({who}) in the last {max_age:g}s"
                if worker is None
                else f"{family}: worker {worker.pid} on {host} last beat {age:.0f}s ago "
                f"(more than {max_age:g}s): hung or stopped"
            )
    finally:
        await _close(redis)
    return Report("\n".join(lines), 1 if dead else 0)
