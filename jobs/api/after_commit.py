"""Jobs enqueued once the caller's transaction has committed: never before, never for a rollback.

The service API writes everything into the caller's session; the job that acts on it (the
first sync of a connected account, the delivery of a queued e-mail) is enqueued only when that
transaction commits. Enqueued earlier, a fast worker could look for rows not yet committed; and
a rolled-back transaction enqueues nothing.

The database is the source of truth, the enqueue a nudge: if it is lost (the process dies right
after the commit, or Redis stays unreachable through a few attempts, which is logged) the
periodic jobs still act on the rows — the outbox sweep every 5 minutes, the sync fan-out every
hour (2 hours for Notion), the AI scheduler every minute. Only the top-level commit counts: a
rolled-back savepoint inside a committed transaction still enqueues (the job then finds nothing
to do).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from jobs.client import JobsPool
from jobs.registry import get_job

__all__ = ["enqueue_after_commit", "wait_for_enqueues"]

logger = logging.getLogger(__name__)

#: Where a session keeps the enqueues waiting for its commit (``Session.info``).
PENDING_KEY = "jobs.after_commit"
#: Seconds between the attempts of an enqueue after commit (then it is given up, and logged).
ATTEMPT_DELAYS = (0.2, 1.0, 3.0)

_running: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class _Enqueue:
    pool: JobsPool
    name: str
    job_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)


async def _send(item: _Enqueue) -> None:
    failure = ""
    for attempt, delay in enumerate((0.0, *ATTEMPT_DELAYS)):
        await asyncio.sleep(delay)
        try:
            await item.pool.enqueue_job(item.name, _job_id=item.job_id, **item.kwargs)
        except (OSError, ConnectionError, TimeoutError) as error:
            failure = f"{type(error).__name__}: {error}"
            continue
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"
            break
        if attempt:
            logger.info("job %s (%s) enqueued after %d retries", item.job_id, item.name, attempt)
        return
    logger.error(
        "could not enqueue job %s (%s) after the commit (%s); the periodic jobs will pick "
        "the committed rows up",
        item.job_id,
        item.name,
        failure,
    )


def _after_commit(session: Session) -> None:
    pending: list[_Enqueue] = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    loop = asyncio.get_running_loop()
    for item in pending:
        task = loop.create_task(_send(item), name=f"enqueue {item.name} after commit")
        _running.add(task)
        task.add_done_callback(_running.discard)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def enqueue_after_commit(
    session: AsyncSession,
    pool: JobsPool,
    name: str,
    /,
    *,
    _job_id: str | None = None,
    **kwargs: Any,
) -> str:
    """Enqueue job ``name`` once ``session``'s transaction commits; the job's id.

    The arguments are validated now (:class:`jobs.errors.JobArgumentsError`, before anything is
    committed). Nothing is enqueued if the transaction rolls back.
    """
    get_job(name).encode(kwargs)
    sync_session = session.sync_session
    if not event.contains(sync_session, "after_commit", _after_commit):
        event.listen(sync_session, "after_commit", _after_commit)
        event.listen(sync_session, "after_rollback", _after_rollback)
    job_id = _job_id or uuid4().hex
    sync_session.info.setdefault(PENDING_KEY, []).append(_Enqueue(pool, name, job_id, kwargs))
    return job_id


async def wait_for_enqueues(seconds: float = 10.0) -> None:
    """Wait (up to ``seconds``) for the enqueues of the transactions committed so far.

    For a graceful shut-down of the API process, and for tests.
    """
    if _running:
        await asyncio.wait(set(_running), timeout=seconds)
