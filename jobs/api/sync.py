"""Asking for a user's accounts to be synced now, instead of at the next hourly fan-out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.api.errors import InvalidInputError, NotFoundError
from jobs.client import JobsPool
from jobs.db.base import utcnow
from jobs.db.engine import bind_session
from jobs.db.sync_models import AccountState, GoogleAccount, NotionIntegration
from jobs.settings import Settings

__all__ = ["SyncRequest", "request_sync"]

Kind = Literal["google", "notion"]
_KINDS: dict[str, tuple[type[GoogleAccount] | type[NotionIntegration], str, str]] = {
    "google": (GoogleAccount, "sync_calendar_account", "account_id"),
    "notion": (NotionIntegration, "sync_notion_integration", "integration_id"),
}


@dataclass(frozen=True)
class SyncRequest:
    """One sync asked for: which account, and the job's id."""

    kind: str
    account_id: int
    job_id: str


async def request_sync(
    session: AsyncSession,
    pool: JobsPool,
    *,
    user_id: int,
    kind: Kind | None = None,
    account_id: int | None = None,
    settings: Settings | None = None,
) -> list[SyncRequest]:
    """Enqueue a sync of the user's active accounts now (of one ``kind``, or one account).

    Nothing is written, so the jobs are enqueued at once. A sync already running for an account
    runs once more instead of twice at a time. Another user's account is NotFoundError; an
    account waiting for the user to connect it again (``needs_reconsent``) is not synced.
    """
    if kind is not None and kind not in _KINDS:
        raise InvalidInputError([{"loc": ("kind",), "msg": "must be 'google' or 'notion'"}])
    if account_id is not None and kind is None:
        raise InvalidInputError([{"loc": ("kind",), "msg": "required with account_id"}])
    await bind_session(session, settings)
    requests = []
    stamp = f"{utcnow():%Y%m%dT%H%M%S%f}"
    for name in [kind] if kind else list(_KINDS):
        model, job_name, argument = _KINDS[name]
        query = select(model.id).where(
            model.user_id == user_id, model.state != AccountState.NEEDS_RECONSENT
        )
        if account_id is not None:
            query = query.where(model.id == account_id)
        ids = list(await session.scalars(query.order_by(model.id)))
        if account_id is not None and not ids:
            raise NotFoundError(f"{name} account {account_id} of user {user_id} to sync")
        for found in ids:
            job_id = f"{job_name}:{found}:request:{stamp}"
            arguments: dict[str, Any] = {argument: found}
            await pool.enqueue_job(job_name, _job_id=job_id, **arguments)
            requests.append(SyncRequest(name, found, job_id))
    return requests
