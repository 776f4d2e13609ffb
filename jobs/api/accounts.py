"""What connecting and disconnecting Google accounts and Notion integrations share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from jobs.api.after_commit import enqueue_after_commit
from jobs.api.ownership import lock_owned
from jobs.client import JobsPool
from jobs.db.base import utcnow
from jobs.db.sync_models import AccountState, GoogleAccount, NotionIntegration
from jobs.db.upsert import upsert_rows

__all__ = ["ACTIVE_AGAIN", "Connection", "Disconnection", "remove_account", "store_account"]

Account = type[GoogleAccount] | type[NotionIntegration]


@dataclass(frozen=True)
class Connection:
    """A connected account (or integration), whether it is new, and its first sync's job id."""

    account_id: int
    created: bool
    sync_job_id: str


@dataclass(frozen=True)
class Disconnection:
    """What disconnecting removed: nothing when it was gone already, else rows per kind."""

    account_id: int
    removed: bool
    deleted: dict[str, int] = field(default_factory=dict)


#: What connecting again resets: fresh tokens deserve a fresh try.
ACTIVE_AGAIN: dict[str, Any] = {
    "state": AccountState.ACTIVE,
    "last_error": None,
    "failures": 0,
    "next_attempt_at": None,
}


async def store_account(
    session: AsyncSession,
    pool: JobsPool,
    model: Account,
    row: dict[str, Any],
    *,
    identity: tuple[str, str],
    sync_job: str,
    argument: str,
) -> Connection:
    """Insert or update the account with the same ``identity`` columns; its id and sync job id.

    The sync job is enqueued once the session's transaction commits.
    """
    created = not await session.scalar(
        select(model.id).where(*(getattr(model, name) == row[name] for name in identity))
    )
    values = {**row, **ACTIVE_AGAIN}
    statement = upsert_rows(session.bind.dialect.name, model, [values], conflict_columns=identity)
    account_id = int((await session.execute(statement, [values])).scalar_one())
    job_id = enqueue_after_commit(
        session,
        pool,
        sync_job,
        _job_id=f"{sync_job}:{account_id}:connect:{utcnow():%Y%m%dT%H%M%S%f}",
        **{argument: account_id},
    )
    return Connection(account_id, created, job_id)


async def remove_account(
    session: AsyncSession,
    model: Account,
    *,
    account_id: int,
    user_id: int,
    synced: Sequence[tuple[str, InstrumentedAttribute[int]]],
) -> Disconnection:
    """Delete the user's account and its synced rows (counted per kind).

    ``synced`` names each kind of synced row with its column holding the account's id. The
    account row is locked first, so a sync writing meanwhile waits, then finds it gone.
    """
    if not await lock_owned(session, model, account_id, user_id):
        return Disconnection(account_id, removed=False)
    counts = {}
    for kind, column in synced:
        result = await session.execute(delete(column.class_).where(column == account_id))
        counts[kind] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    await session.execute(delete(model).where(model.id == account_id))
    return Disconnection(account_id, removed=True, deleted=counts)
