"""Plain ARQ: ``WorkerSettings`` (its defaults) and ``TunedWorkerSettings`` (poll 10 ms)."""

from __future__ import annotations

import os
from typing import Any

from arq.connections import RedisSettings

from benchmarks.runtime.recorder import ready, run_job


async def noop(ctx: dict[str, Any], sent: float) -> None:
    """Do nothing."""
    await run_job("noop", sent)


async def io(ctx: dict[str, Any], sent: float) -> None:
    """Wait 25 ms."""
    await run_job("io", sent)


async def probe(ctx: dict[str, Any], sent: float) -> None:
    """Record the pick-up time."""
    await run_job("probe", sent)


async def startup(ctx: dict[str, Any]) -> None:
    """Tell the benchmark the worker runs."""
    await ready()


class WorkerSettings:
    """ARQ's defaults (poll every 0.5 s, 10 jobs at once, pickle)."""

    functions = [noop, io, probe]
    on_startup = startup
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://localhost"))


class TunedWorkerSettings:
    """ARQ polling every 10 ms."""

    functions = [noop, io, probe]
    on_startup = startup
    redis_settings = WorkerSettings.redis_settings
    poll_delay = 0.01


NAMES = {"noop": "noop", "io": "io", "probe": "probe"}
