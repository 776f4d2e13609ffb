"""The backend's own job family, ``reports``, declared outside the ``jobs`` package.

Its worker runs with ``arq examples.backend.reports.WorkerSettings``; producers find its jobs
when ``JOB_FAMILY_MODULES=examples.backend.reports``. Routing, argument validation, retries,
tracing and failed-job records work as for the built-in families.
"""

from __future__ import annotations

from sqlalchemy import func, select

from jobs import (
    FamilyWorkerSettings,
    JobContext,
    PermanentJobError,
    RetryPolicy,
    declare_family,
    job,
)
from jobs.db import AiTask, CalendarEvent, OutboundEmail, User

__all__ = ["REPORTS", "WorkerSettings", "usage_report"]

REPORTS = declare_family("reports")


@job(family=REPORTS, timeout=60, retry=RetryPolicy(max_tries=3, backoff_base=1.0))
async def usage_report(
    ctx: JobContext, *, user_id: int, webhook_url: str | None = None
) -> dict[str, int]:
    """Count one user's e-mails, AI tasks and calendar events; post them to ``webhook_url``.

    An unknown user fails for good; a webhook answering 429/5xx (or unreachable) is retried
    with backoff by the job's policy, any other error status fails the job.
    """
    async with ctx.sessions() as session:
        if await session.get(User, user_id) is None:
            raise PermanentJobError(f"no user {user_id}")
        counts = {
            name: int(
                await session.scalar(
                    select(func.count()).select_from(model).where(model.user_id == user_id)
                )
                or 0
            )
            for name, model in (
                ("emails", OutboundEmail),
                ("ai_tasks", AiTask),
                ("calendar_events", CalendarEvent),
            )
        }
    if webhook_url is not None:
        response = await ctx.http.post(webhook_url, json={"user_id": user_id, **counts})
        response.raise_for_status()
    return counts


class WorkerSettings(FamilyWorkerSettings, family=REPORTS):
    """ARQ settings of the reports family's workers."""

    functions = [usage_report]
