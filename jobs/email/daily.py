"""When each user's daily summary is due, and queueing the due ones once per local day.

A user's summary is due from 08:00 on the user's own clock (``users.timezone``, read with
daylight saving time) until that local day ends. ``send_daily_email_summary`` runs every 15
minutes — every UTC offset in use is a multiple of 15 minutes (Kathmandu +05:45, Chatham
+12:45), so each user's 08:00 falls exactly on a run — and queues the summary of every opted-in
user whose 08:00 has come and who has none for that local date. The outbox key
``daily-summary:<user>:<local date>`` is unique, so runs at the same time, repeated runs and a
run after an outage queue one summary per user and local day. An unknown zone falls back to
``SCHEDULE_TIMEZONE`` with a warning.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.models import OutboundEmail, User
from jobs.db.outbox import outbox_row
from jobs.db.upsert import insert_ignoring_conflicts
from jobs.email.summary import SUMMARY_KEY_PREFIX, SummaryWindow, build_summary

__all__ = ["SUMMARY_TIME", "queue_due_summaries", "summary_due_day", "summary_key"]

logger = logging.getLogger(__name__)

#: The local time from which a user's summary of the day is sent.
SUMMARY_TIME = dt.time(8, 0)
#: A run this early still counts as on time: a worker whose clock is a little behind the one
#: that scheduled the run must not push every summary due at that run to the next one.
CLOCK_TOLERANCE = dt.timedelta(seconds=60)
USERS_PER_BATCH = 200


def summary_key(user_id: int, day: dt.date) -> str:
    """The outbox ``dedupe_key`` of ``user_id``'s summary of the local date ``day``."""
    return f"{SUMMARY_KEY_PREFIX}:{user_id}:{day.isoformat()}"


def summary_due_day(
    zone: ZoneInfo, now: dt.datetime, *, tolerance: dt.timedelta = CLOCK_TOLERANCE
) -> dt.date | None:
    """The local date whose summary is due at ``now`` in ``zone``, or None before 08:00."""
    moment = now + tolerance
    day = moment.astimezone(zone).date()
    # compared in UTC: aware datetimes of one zone compare as wall times, ignoring the offset
    send_at = dt.datetime.combine(day, SUMMARY_TIME, zone).astimezone(dt.UTC)
    return day if send_at <= moment.astimezone(dt.UTC) else None


@dataclass
class _Due:
    user: User
    zone: ZoneInfo
    day: dt.date
    zone_unknown: bool

    @property
    def key(self) -> str:
        return summary_key(self.user.id, self.day)


def _due(
    users: list[User], now: dt.datetime, fallback: ZoneInfo, counts: dict[str, int]
) -> list[_Due]:
    due = []
    for user in users:
        try:
            zone, unknown = ZoneInfo(user.timezone), False
        except (ZoneInfoNotFoundError, ValueError):
            zone, unknown = fallback, True
            counts["unknown_timezone"] += 1
        day = summary_due_day(zone, now)
        if day is None:
            counts["not_yet_due"] += 1
        else:
            due.append(_Due(user, zone, day, unknown))
    return due


async def _already_queued(session: AsyncSession, keys: list[str]) -> set[str]:
    found = await session.scalars(
        select(OutboundEmail.dedupe_key).where(OutboundEmail.dedupe_key.in_(keys))
    )
    return {key for key in found if key is not None}


async def _build_rows(session: AsyncSession, due: list[_Due]) -> list[dict[str, Any]]:
    rows = []
    for item in due:
        summary = await build_summary(session, item.user, SummaryWindow(item.day, item.zone))
        rows.append(
            outbox_row(
                to=item.user.email,
                subject=summary.subject,
                text=summary.text,
                html=summary.html,
                user_id=item.user.id,
                dedupe_key=item.key,
            )
        )
    return rows


async def queue_due_summaries(
    sessions: async_sessionmaker[AsyncSession], *, now: dt.datetime, fallback_zone: ZoneInfo
) -> dict[str, int]:
    """Queue the summary of every opted-in user due at ``now`` who has none for that day.

    Counts: ``queued``, ``already_queued`` (by an earlier or a concurrent run),
    ``not_yet_due`` (before 08:00 locally) and ``unknown_timezone`` (read in ``fallback_zone``).
    Summaries are built outside any write transaction and inserted ignoring the unique key.
    """
    counts = dict.fromkeys(("queued", "already_queued", "not_yet_due", "unknown_timezone"), 0)
    last_id = 0
    while True:
        async with sessions() as session:
            users = list(
                await session.scalars(
                    select(User)
                    .where(User.daily_summary_enabled.is_(True), User.id > last_id)
                    .order_by(User.id)
                    .limit(USERS_PER_BATCH)
                )
            )
            if not users:
                return counts
            last_id = users[-1].id
            due = _due(users, now, fallback_zone, counts)
            queued_before = await _already_queued(session, [item.key for item in due])
            counts["already_queued"] += len(queued_before)
            due = [item for item in due if item.key not in queued_before]
            rows = await _build_rows(session, due)
        if rows:
            async with sessions.begin() as session:
                result = await session.execute(
                    insert_ignoring_conflicts(session.bind.dialect.name, OutboundEmail, rows)
                )
                inserted = max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
            counts["queued"] += inserted
            counts["already_queued"] += len(rows) - inserted
        for item in due:
            if item.zone_unknown:
                logger.warning(
                    "user %s has an unknown time zone %r; using SCHEDULE_TIMEZONE %s",
                    item.user.id,
                    item.user.timezone,
                    fallback_zone.key,
                )
