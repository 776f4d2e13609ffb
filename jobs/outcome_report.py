"""What the families' work came to, for ``python -m jobs status`` and ``emails failed``.

Read from the families' own tables (the outbox, the AI run records, the connected accounts),
so it shows what happened whichever worker did it, and survives worker restarts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.ai_models import AiTask, AiTaskRun, AiTaskState
from jobs.db.models import EmailStatus, OutboundEmail
from jobs.db.sync_models import AccountState, GoogleAccount, NotionIntegration

__all__ = ["DomainOutcomes", "domain_outcomes", "failed_email_lines", "outcome_lines"]

#: Characters of an e-mail's last error shown per line.
ERROR_CHARS = 100


def _counts(rows: Iterable[Row[tuple[Any, int]]]) -> dict[str, int]:
    return {str(getattr(key, "value", key)): int(count) for key, count in rows}


@dataclass(frozen=True)
class DomainOutcomes:
    """What the families' work came to since a moment: e-mails, AI runs, connected accounts."""

    emails_sent: int
    emails_failed: int
    emails_waiting: int
    ai_runs: dict[str, int]
    ai_tasks_paused: int
    accounts: dict[str, dict[str, int]]

    def account_states(self, provider: str) -> dict[str, int]:
        """Accounts of ``provider`` (``google``, ``notion``) per state, every state named."""
        counts = self.accounts.get(provider, {})
        return {state.value: counts.get(state.value, 0) for state in AccountState}


async def domain_outcomes(
    sessions: async_sessionmaker[AsyncSession], since: dt.datetime
) -> DomainOutcomes:
    """E-mails and AI runs since ``since``, paused tasks and accounts by state, read once."""
    async with sessions() as session:
        sent = await session.scalar(select(func.count()).where(OutboundEmail.sent_at >= since))
        failed = await session.scalar(select(func.count()).where(OutboundEmail.failed_at >= since))
        waiting = await session.scalar(
            select(func.count()).where(
                OutboundEmail.status == EmailStatus.QUEUED, OutboundEmail.attempts > 0
            )
        )
        runs = _counts(
            await session.execute(
                select(AiTaskRun.status, func.count())
                .where(AiTaskRun.finished_at >= since)
                .group_by(AiTaskRun.status)
            )
        )
        paused = await session.scalar(
            select(func.count()).where(AiTask.state == AiTaskState.PAUSED)
        )
        accounts = {
            name: _counts(
                await session.execute(select(model.state, func.count()).group_by(model.state))
            )
            for name, model in (("google", GoogleAccount), ("notion", NotionIntegration))
        }
    return DomainOutcomes(sent or 0, failed or 0, waiting or 0, runs, paused or 0, accounts)


async def outcome_lines(
    sessions: async_sessionmaker[AsyncSession], since: dt.datetime
) -> list[str]:
    """E-mails, AI runs and connected accounts: what went well and what did not since ``since``."""
    outcomes = await domain_outcomes(sessions, since)
    lines = [
        f"e-mails 1h:   sent {outcomes.emails_sent}, failed {outcomes.emails_failed}; waiting to "
        f"be retried {outcomes.emails_waiting}  (python -m jobs emails failed)",
        f"ai runs 1h:   succeeded {outcomes.ai_runs.get('succeeded', 0)}, failed "
        f"{outcomes.ai_runs.get('failed', 0)}; tasks paused {outcomes.ai_tasks_paused}",
    ]
    for name in outcomes.accounts:
        states = outcomes.account_states(name)
        lines.append(f"{name} accounts: " + ", ".join(f"{k} {v}" for k, v in states.items()))
    return lines


async def failed_email_lines(
    sessions: async_sessionmaker[AsyncSession], *, limit: int = 50
) -> list[str]:
    """The newest failed e-mails: id, when, attempts, recipient, subject and the server's reply."""
    async with sessions() as session:
        emails = await session.scalars(
            select(OutboundEmail)
            .where(OutboundEmail.status == EmailStatus.FAILED)
            .order_by(OutboundEmail.failed_at.desc(), OutboundEmail.id.desc())
            .limit(limit)
        )
        lines = []
        for email in emails:
            when = f"{email.failed_at:%Y-%m-%d %H:%M:%S}" if email.failed_at else "-" * 19
            error = (email.last_error or "").replace("\n", " ")
            if len(error) > ERROR_CHARS:
                error = error[: ERROR_CHARS - 1] + "…"
            lines.append(
                f"{email.id:6d} {when} tries={email.attempts} user={email.user_id or '-'} "
                f"to={email.to_address} subject={email.subject[:40]!r}: {error}"
            )
    return lines
