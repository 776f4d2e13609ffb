"""How long a job has been waiting for the database, kept in Redis beside ARQ's try count.

ARQ counts every try of a job (``arq:retry:<job id>``) and refuses one past the function's
``max_tries`` before the runtime sees it; the workers therefore give ARQ a ``max_tries`` far
above any policy's (:data:`ARQ_MAX_TRIES`) and the runtime applies the job's own: a try's
ordinary number is ARQ's minus the tries spent waiting for the database, counted in the hash
``jobs:db-wait:<job id>`` (``since``: when the job first found the database unreachable,
``tries``: how many such tries). A job waits while ``since`` is less than
``DATABASE_OUTAGE_RETRY_SECONDS`` ago, with a backoff doubling from 1 s up to
``DATABASE_OUTAGE_BACKOFF_MAX_SECONDS``; after that an unreachable database is an ordinary
failure again. If Redis cannot be asked, the try counts as an ordinary one.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Final

from opentelemetry.instrumentation.utils import suppress_instrumentation

from jobs.settings import Settings

__all__ = ["ARQ_MAX_TRIES", "WAIT_KEY_PREFIX", "OutageWait"]

logger = logging.getLogger("jobs.job")

#: ``max_tries`` the workers give ARQ; the runtime enforces each job's own.
ARQ_MAX_TRIES: Final = 1_000_000
WAIT_KEY_PREFIX: Final = "jobs:db-wait:"
#: The first pause of a job waiting for the database, doubled after each try.
FIRST_PAUSE: Final = 1.0


class OutageWait:
    """One job's wait for the database; see the module docstring."""

    def __init__(self, redis: Any, job_id: str, settings: Settings) -> None:
        self.redis = redis
        self.key = f"{WAIT_KEY_PREFIX}{job_id}"
        self.limit = settings.database_outage_retry_seconds
        self.cap = settings.database_outage_backoff_max_seconds
        self.counted = 0

    async def tries(self) -> int:
        """How many earlier tries of the job were spent waiting for the database."""
        try:
            with suppress_instrumentation():  # the runtime's bookkeeping, not the job's calls
                value = await self.redis.hget(self.key, "tries")
        except Exception:
            return 0
        self.counted = int(value) if value is not None and value.isdigit() else 0
        return self.counted

    async def another(self, exc: BaseException) -> tuple[float, float] | None:
        """(seconds waited so far, pause) for another try, or None when the wait is over."""
        now = time.time()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hsetnx(self.key, "since", repr(now))
                pipe.hget(self.key, "since")
                pipe.expire(self.key, round(self.limit) + 86400)
                _, since, _ = await pipe.execute()
            elapsed = max(0.0, now - float(since))
            if elapsed >= self.limit:
                return None  # an ordinary try from now on
            tries = await self.redis.hincrby(self.key, "tries", 1)
        except Exception as error:
            logger.warning("cannot count a wait for the database: %s", type(error).__name__)
            return None
        pause = min(self.cap, FIRST_PAUSE * 2 ** min(int(tries) - 1, 30))
        pause = pause / 2 + random.uniform(0, pause / 2)  # noqa: S311 - jitter, not crypto
        return elapsed, min(pause, self.limit - elapsed + FIRST_PAUSE)

    async def forget(self) -> None:
        """The job got through: its next outage starts a new wait."""
        if self.counted:
            try:
                await self.redis.delete(self.key)
            except Exception:
                logger.debug("could not delete %s", self.key)
