"""SAQ with its defaults: ``saq benchmarks.runtime.saq_jobs.settings`` (10 jobs at once)."""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from benchmarks.runtime.recorder import ready, run_job


async def noop(ctx: dict[str, Any], *, sent: float) -> None:
    """Do nothing."""
    await run_job("noop", sent)


async def io(ctx: dict[str, Any], *, sent: float) -> None:
    """Wait 25 ms."""
    await run_job("io", sent)


async def probe(ctx: dict[str, Any], *, sent: float) -> None:
    """Record the pick-up time."""
    await run_job("probe", sent)


async def startup(ctx: dict[str, Any]) -> None:
    """Tell the benchmark the worker runs."""
    await ready()


def queue() -> Queue:
    """The queue, on ``REDIS_URL``."""
    return Queue.from_url(os.environ.get("REDIS_URL", "redis://localhost"))


settings = {"queue": queue(), "functions": [noop, io, probe], "concurrency": 10, "startup": startup}
NAMES = {"noop": "noop", "io": "io", "probe": "probe"}
