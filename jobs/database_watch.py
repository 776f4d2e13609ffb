"""A worker's watch on its database: waiting for it at start-up, and draining kept records.

At start-up :func:`wait_for_database` retries the first statement while the database is
unreachable, with one log line, for at most ``DATABASE_STARTUP_WAIT_SECONDS``. Then
:func:`run_database_watch` runs beside the jobs: every ``DEAD_LETTER_DRAIN_INTERVAL`` seconds
it checks a database it last found unreachable (``SELECT 1``, logging when it is back) and
writes the records kept in Redis meanwhile (:mod:`jobs.dead_letters`). It never ends the
worker: every error is logged and the next round tried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.db.outage import DATABASE, is_database_unreachable
from jobs.dead_letters import DeadLetters

__all__ = ["run_database_watch", "wait_for_database"]

logger = logging.getLogger("jobs.database")

#: Longest pause between two start-up attempts.
STARTUP_PAUSE_MAX = 5.0


async def wait_for_database(check: Callable[[], Awaitable[None]], *, within: float) -> None:
    """Run ``check`` until the database answers it, for at most ``within`` seconds.

    An unreachable database is logged once and tried again with growing pauses; any other
    error, or still no database after ``within`` seconds, is raised.
    """
    deadline = time.monotonic() + within
    pause = 0.5
    while True:
        try:
            await check()
        except Exception as exc:
            if not is_database_unreachable(exc) or time.monotonic() + pause > deadline:
                raise
            if not DATABASE.is_down:
                logger.warning(
                    "database not reachable yet (%s); waiting up to %.0fs for it",
                    type(exc).__name__,
                    within,
                )
            DATABASE.unreachable(exc)
            await asyncio.sleep(pause)
            pause = min(STARTUP_PAUSE_MAX, pause * 2)
        else:
            DATABASE.reachable()
            return


async def _probe(engine: AsyncEngine) -> None:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        if not is_database_unreachable(exc):
            raise
        DATABASE.unreachable(exc)
    else:
        DATABASE.reachable()


async def run_database_watch(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetters,
    *,
    interval: float,
) -> None:
    """Forever: check an unreachable database, then drain the dead-letter list into it."""
    while True:
        try:
            if DATABASE.is_down:
                await _probe(engine)
            if not DATABASE.is_down and await dead_letters.waiting():
                await dead_letters.drain(sessions)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the watch must outlive anything Redis or the database do
            logger.warning("database watch round failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)
