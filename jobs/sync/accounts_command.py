"""``python -m jobs accounts list|reactivate``: connected accounts by state, and bringing one back.

``list [--state STATE]`` prints one line per Google account and Notion integration: kind, id,
user, state, failures in a row, next try, last sync and last error. ``reactivate google|notion
ID`` sets the account ``active`` with its failures cleared, so the next fan-out (or an enqueued
``sync_calendar_account`` / ``sync_notion_integration``) syncs it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from jobs.db import create_engine, create_session_factory
from jobs.db.sync_models import AccountState, GoogleAccount, NotionIntegration
from jobs.errors import JobsError
from jobs.settings import Settings

__all__ = ["ACCOUNT_KINDS", "list_accounts", "reactivate_account"]

ACCOUNT_KINDS: dict[str, type[GoogleAccount] | type[NotionIntegration]] = {
    "google": GoogleAccount,
    "notion": NotionIntegration,
}
#: The job syncing one account of each kind, and its argument.
SYNC_JOBS = {
    "google": ("sync_calendar_account", "account_id"),
    "notion": ("sync_notion_integration", "integration_id"),
}


def _when(moment: dt.datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def _line(kind: str, account: GoogleAccount | NotionIntegration) -> str:
    error = (account.last_error or "").replace("\n", " ")[:120]
    return (
        f"{kind:6} {account.id:>6} user={account.user_id:<6} {account.state.value:15} "
        f"failures={account.failures:<3} next_try={_when(account.next_attempt_at)} "
        f"last_sync={_when(account.last_synced_at)} {error}"
    ).rstrip()


async def list_accounts(settings: Settings, state: str | None = None) -> str:
    """The accounts (all, or those in ``state``) as lines of text, oldest id first."""
    wanted = None if state is None else AccountState(state)
    engine = create_engine(settings)
    try:
        sessions = create_session_factory(engine)
        lines = []
        async with sessions() as session:
            for kind, model in ACCOUNT_KINDS.items():
                query = select(model).order_by(model.id)
                if wanted is not None:
                    query = query.where(model.state == wanted)
                rows: list[GoogleAccount | NotionIntegration] = list(await session.scalars(query))
                lines += [_line(kind, account) for account in rows]
    finally:
        await engine.dispose()
    return "\n".join(lines) if lines else "no accounts" + (f" in state {state}" if state else "")


async def reactivate_account(settings: Settings, kind: str, account_id: int) -> str:
    """Set one account ``active`` again, failures cleared; what was done, as one line."""
    model = ACCOUNT_KINDS[kind]
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine).begin() as session:
            previous = await session.scalar(select(model.state).where(model.id == account_id))
            if previous is None:
                raise JobsError(f"no {kind} account with id {account_id}")
            await session.execute(
                update(model)
                .where(model.id == account_id)
                .values(
                    state=AccountState.ACTIVE, failures=0, next_attempt_at=None, last_error=None
                )
            )
    finally:
        await engine.dispose()
    job, argument = SYNC_JOBS[kind]
    return (
        f"{kind} account {account_id}: {previous.value} -> active; it syncs at the next fan-out, "
        f"or now with: python -m jobs enqueue {job} {argument}={account_id}"
    )
