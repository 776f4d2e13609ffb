"""Users with rows in every user-owned table, and a reader of one user's rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.db import (
    AiTask,
    AiTaskRun,
    Base,
    CalendarEvent,
    EmailStatus,
    GoogleAccount,
    GoogleCalendar,
    NotionIntegration,
    NotionPage,
    OutboundEmail,
    User,
    UserSession,
)
from jobs.files import owned_tables

T0 = dt.datetime(2026, 5, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)


async def add_user_with_data(sessions: async_sessionmaker[AsyncSession], name: str) -> int:
    """A user with a session, e-mails, calendar, Notion and AI rows; the user's id."""
    async with sessions.begin() as session:
        user = User(email=f"{name}@example.com", display_name=f"{name.title()} Ü", timezone="UTC")
        session.add(user)
        await session.flush()
        account = GoogleAccount(user_id=user.id, google_email=f"{name}@gmail.com", created_at=T0)
        integration = NotionIntegration(user_id=user.id, workspace_name="ws", watermark=T0)
        task = AiTask(user_id=user.id, instruction="summarise", cron_expression="0 9 * * *")
        session.add_all([account, integration, task])
        await session.flush()
        session.add_all(
            [
                UserSession(user_id=user.id, token_hash=f"hash-{name}", expires_at=T0),
                *[
                    OutboundEmail(
                        user_id=user.id,
                        to_address=f"{name}@example.com",
                        subject=f"mail {i}",
                        body_text="line\nline",
                        status=EmailStatus.SENT,
                        sent_at=T0,
                    )
                    for i in range(3)
                ],
                GoogleCalendar(user_id=user.id, account_id=account.id, calendar_id="primary"),
                CalendarEvent(
                    user_id=user.id,
                    account_id=account.id,
                    calendar_id="primary",
                    remote_id=f"{name}-allday",
                    all_day=True,
                    start_date=dt.date(2026, 5, 2),
                    end_date=dt.date(2026, 5, 3),
                ),
                CalendarEvent(
                    user_id=user.id,
                    account_id=account.id,
                    calendar_id="primary",
                    remote_id=f"{name}-timed",
                    starts_at=T0,
                    ends_at=T0 + dt.timedelta(hours=1),
                ),
                NotionPage(
                    user_id=user.id,
                    integration_id=integration.id,
                    remote_id=f"{name}-page",
                    parent={"type": "database_id", "ids": [1, 2]},
                    last_edited_time=T0,
                ),
                AiTaskRun(
                    task_id=task.id,
                    user_id=user.id,
                    scheduled_for=T0,
                    steps=[{"step": 1, "text": "ok"}],
                    tokens_used=42,
                ),
            ]
        )
        return user.id


async def rows_of(engine: AsyncEngine, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``user_id`` in every user-owned table, in primary-key order."""
    found = {}
    async with engine.connect() as connection:
        for owned in owned_tables(Base.metadata):
            result = await connection.execute(owned.select_rows(user_id))
            found[owned.name] = [dict(row) for row in result.mappings()]
    return found
