"""Sync generations: which listing saw a row, and which run may still write.

Every listing of a calendar (or of a Notion integration's pages) first claims a new generation
number on the calendar's (integration's) row and stamps it on every row it writes. What a full
listing did not see is what still carries another generation once it has finished — compared
for equality, never by wall-clock time, so clocks and run lengths do not matter. Reading an
account's calendar list claims one on the account's row, as a fence only.

The claim is also a fence: every write of a run first checks, in its own transaction and under
the row's lock, that the generation is still the one it claimed. A run that a newer run has
overtaken (the Redis lease lost to a paused process or a failover) stops with
:class:`SyncSuperseded` before writing anything, so it can neither overwrite the newer run's
stamps nor sweep rows the newer run has seen.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.db.sync_models import GoogleAccount, GoogleCalendar, NotionIntegration

__all__ = ["SyncSuperseded", "claim_generation", "hold_generation"]

Owner = type[GoogleAccount] | type[GoogleCalendar] | type[NotionIntegration]


class SyncSuperseded(Exception):
    """A newer run of the same calendar or integration has started; this one must stop."""


async def claim_generation(session: AsyncSession, owner: Owner, owner_id: int) -> int:
    """Start a new generation for the calendar or integration ``owner_id``; its number."""
    generation = await session.scalar(
        update(owner)
        .where(owner.id == owner_id)
        .values(sync_generation=owner.sync_generation + 1)
        .returning(owner.sync_generation)
    )
    if generation is None:
        raise SyncSuperseded(f"{owner.__tablename__} {owner_id} no longer exists")
    return int(generation)


async def hold_generation(
    session: AsyncSession, owner: Owner, owner_id: int, generation: int
) -> None:
    """Lock the owner's row for this transaction; SyncSuperseded if a newer run claimed it."""
    result = await session.execute(
        update(owner)
        .where(owner.id == owner_id, owner.sync_generation == generation)
        .values(sync_generation=generation)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise SyncSuperseded(
            f"{owner.__tablename__} {owner_id}: a newer sync run has started (generation "
            f"{generation} is no longer current)"
        )
