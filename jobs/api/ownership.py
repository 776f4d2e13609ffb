"""Finding a row that must belong to the calling user, locked for the caller's transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.api.errors import NotFoundError
from jobs.db.ai_models import AiTask
from jobs.db.sync_models import GoogleAccount, NotionIntegration

__all__ = ["lock_owned"]

Owned = type[AiTask] | type[GoogleAccount] | type[NotionIntegration]


async def lock_owned(session: AsyncSession, model: Owned, row_id: int, user_id: int) -> bool:
    """Lock row ``row_id`` of ``model``; False if there is none, NotFoundError if not the user's.

    Another user's row is answered like a missing one would be to that user: NotFoundError.
    """
    owner = await session.scalar(select(model.user_id).where(model.id == row_id).with_for_update())
    if owner is None:
        return False
    if owner != user_id:
        raise NotFoundError(f"{model.__tablename__} row {row_id} of user {user_id}")
    return True
