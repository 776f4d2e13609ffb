"""Connected accounts and AI tasks as the dashboard lists them: the troubled ones first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.ai_models import AiTask, AiTaskState
from jobs.db.sync_models import AccountState, GoogleAccount, NotionIntegration
from jobs.redaction import Redactor
from jobs.sync.accounts_command import ACCOUNT_KINDS

__all__ = ["AccountRow", "TaskRow", "read_accounts", "read_ai_tasks"]

#: Rows listed per table.
MAX_ROWS = 200
#: The column naming each kind of account.
NAME_COLUMNS = {"google": "google_email", "notion": "workspace_name"}
#: Characters of an error shown per row.
ERROR_CHARS = 300


@dataclass(frozen=True)
class AccountRow:
    """One Google account or Notion integration."""

    provider: str
    id: int
    user_id: int
    name: str
    state: str
    last_synced_at: dt.datetime | None
    last_error: str | None
    failures: int
    next_attempt_at: dt.datetime | None


@dataclass(frozen=True)
class TaskRow:
    """One AI task."""

    id: int
    user_id: int
    title: str
    state: str
    next_run_at: dt.datetime | None
    last_run_at: dt.datetime | None
    failures_in_row: int
    last_error: str | None


def _cut(text: str | None, redact: Redactor) -> str | None:
    if not text:
        return None
    text = redact(text)
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


async def read_accounts(
    sessions: async_sessionmaker[AsyncSession], redact: Redactor
) -> list[AccountRow]:
    """Google accounts and Notion integrations, those not active first, then by id."""
    rows = []
    async with sessions() as session:
        for provider, model in ACCOUNT_KINDS.items():
            troubled = case((model.state == AccountState.ACTIVE, 1), else_=0)
            accounts: list[GoogleAccount | NotionIntegration] = list(
                await session.scalars(select(model).order_by(troubled, model.id).limit(MAX_ROWS))
            )
            rows += [
                AccountRow(
                    provider,
                    account.id,
                    account.user_id,
                    str(getattr(account, NAME_COLUMNS[provider])),
                    account.state.value,
                    account.last_synced_at,
                    _cut(account.last_error, redact),
                    account.failures,
                    account.next_attempt_at,
                )
                for account in accounts
            ]
    return rows


def _failing(task: AiTask) -> bool:
    return task.state == AiTaskState.FAILED or task.failures_in_row > 0


async def read_ai_tasks(
    sessions: async_sessionmaker[AsyncSession], redact: Redactor
) -> list[TaskRow]:
    """AI tasks: paused and failed ones first, then by next run."""
    troubled = case((AiTask.state.in_([AiTaskState.PAUSED, AiTaskState.FAILED]), 0), else_=1)
    async with sessions() as session:
        tasks = await session.scalars(
            select(AiTask).order_by(troubled, AiTask.next_run_at, AiTask.id).limit(MAX_ROWS)
        )
        return [
            TaskRow(
                task.id,
                task.user_id,
                task.title[:80],
                str(task.state.value),
                task.next_run_at,
                task.last_run_at,
                task.failures_in_row,
                _cut(task.pause_reason or (task.last_result if _failing(task) else None), redact),
            )
            for task in tasks
        ]
