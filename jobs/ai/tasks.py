"""The ai family's jobs: the every-minute scheduler and the run of one task."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobs.ai.capabilities import ASSISTANT_TOOLS
from jobs.ai.llm import ChatClient
from jobs.ai.observability import count_pause, count_run
from jobs.ai.records import finish_run, open_run, run_summary, save_progress
from jobs.ai.runner import Conversation, RunLimits, system_prompt
from jobs.ai.scheduling import claim_due_tasks
from jobs.ai.tools import ToolScope
from jobs.context import JobContext
from jobs.db.base import utcnow
from jobs.registry import job
from jobs.retry import RetryPolicy, is_transient

__all__ = ["run_ai_task", "schedule_ai_tasks"]

logger = logging.getLogger(__name__)


@job(family="ai", timeout=50, retry=RetryPolicy(max_tries=2, backoff_base=5.0))
async def schedule_ai_tasks(ctx: JobContext) -> dict[str, int]:
    """Claim every due active AI task once and enqueue one ``run_ai_task`` for it."""
    counts = await claim_due_tasks(ctx.sessions, ctx.pool, now=utcnow(), time_budget=40.0)
    count_pause("schedule", counts.paused)
    return counts.as_dict()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@job(family="ai", retry=RetryPolicy(max_tries=3, backoff_base=30.0))
async def run_ai_task(ctx: JobContext, task_id: int, scheduled_for: dt.datetime) -> dict[str, Any]:
    """Run a task's instruction with the LLM and the user's tools, and record the run.

    A run already finished for this task and scheduled time is not repeated. LLM 429/5xx are
    retried; a run that fails ``AI_TASK_MAX_FAILURES`` times in a row pauses its task.
    """
    settings = ctx.settings
    opened = await open_run(ctx.sessions, task_id, scheduled_for)
    if opened.skip_reason is not None:
        return {"task_id": task_id, "status": "skipped", "reason": opened.skip_reason}
    task, user, run = opened.task, opened.user, opened.run
    if run.status != "running":
        return {**run_summary(run), "already_recorded": True}
    zone = _zone(task.timezone)
    conversation = Conversation(
        client=ChatClient(ctx.http, settings),
        tools=ASSISTANT_TOOLS,
        scope=ToolScope(
            user_id=user.id,
            task_id=task.id,
            run_id=run.id,
            zone=zone,
            sessions=ctx.sessions,
            pool=ctx.pool,
        ),
        limits=RunLimits(settings.llm_max_steps, settings.llm_max_tokens, settings.llm_timeout),
    )
    system = system_prompt(user.display_name, zone, utcnow(), task.title)
    started = time.perf_counter()
    answer: str | None = None
    error: str | None = None
    try:
        answer, error = await conversation.run(system, task.instruction)
    except Exception as exc:
        error = ctx.redact(f"{type(exc).__name__}: {exc}")
        if is_transient(exc) and not ctx.is_last_try:
            await save_progress(ctx.sessions, run.id, conversation, system, error, started)
            raise
        logger.warning("AI task %s run %s failed: %s", task.id, run.id, error)
    finished = await finish_run(
        ctx.sessions,
        run.id,
        conversation,
        system,
        answer=answer,
        error=error,
        started=started,
        max_failures=settings.ai_task_max_failures,
    )
    summary = run_summary(finished)
    if finished.finished_at is not None and finished.status in ("succeeded", "failed"):
        count_run(finished.status)
    if finished.status == "failed":
        ctx.report_failure("AiRunFailed", finished.error or "the run failed")
    return summary
