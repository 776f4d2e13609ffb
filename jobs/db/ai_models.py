"""The assistant's scheduled AI tasks and the record of every run."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jobs.db.base import USER_ID, Base, BigId, utcnow

__all__ = ["AiTask", "AiTaskRun", "AiTaskState"]


class AiTaskState(enum.StrEnum):
    """Where a task is in its life.

    A one-off task ends ``done`` when its run succeeded and ``failed`` when it failed; a
    recurring task stays ``active`` until paused (by the user, or after failing runs in a row).
    """

    ACTIVE = "active"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"


class AiTask(Base):
    """An instruction a user gave the assistant, with its schedule and state.

    A one-off task has ``run_at``; a recurring one has a 5-field ``cron_expression`` read in
    ``timezone`` (the user's zone). ``next_run_at`` is when it is due next (UTC).
    """

    __tablename__ = "ai_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_ID, ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    instruction: Mapped[str] = mapped_column(Text)
    run_at: Mapped[dt.datetime | None]
    cron_expression: Mapped[str | None] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    state: Mapped[AiTaskState] = mapped_column(
        Enum(
            AiTaskState,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=AiTaskState.ACTIVE,
        index=True,
    )
    next_run_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_run_at: Mapped[dt.datetime | None]
    last_result: Mapped[str | None] = mapped_column(Text)
    failures_in_row: Mapped[int] = mapped_column(Integer, default=0)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    #: Set when a run of another task created this one: creating it again (a repeated run
    #: after a crash) finds this task instead of adding a second.
    origin_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AiTaskRun(Base):
    """One run of a task: prompt, steps, tool calls, answer, tokens, duration and error."""

    __tablename__ = "ai_task_runs"
    __table_args__ = (UniqueConstraint("task_id", "scheduled_for"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ai_tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_ID, ondelete="CASCADE"), index=True)
    scheduled_for: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="running")
    prompt: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tool_calls: Mapped[list[Any]] = mapped_column(JSON, default=list)
    answer: Mapped[str | None] = mapped_column(Text)
    tokens_used: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
