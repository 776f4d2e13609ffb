"""Every family's cron jobs with their next runs, and when each user's daily summary goes out."""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.constants import FAMILIES
from jobs.db.models import User
from jobs.email.daily import SUMMARY_TIME
from jobs.registry import spec_of
from jobs.schedule import Schedule
from jobs.settings import Settings
from jobs.worker import FamilyWorkerSettings

__all__ = ["CronRow", "SummaryZone", "cron_rows", "summary_zones"]

#: Next runs shown per cron job.
NEXT_RUNS = 3
#: Time zones listed for the daily summary.
MAX_ZONES = 100


@dataclass(frozen=True)
class CronRow:
    """One cron job of one family and its next runs (aware, in the schedule's zone)."""

    family: str
    job: str
    expression: str
    timezone: str
    next_runs: list[dt.datetime]


@dataclass(frozen=True)
class SummaryZone:
    """Opted-in users of one time zone and when their next summary is due."""

    timezone: str
    users: int
    next_local: dt.datetime | None
    known: bool


def _worker_settings() -> dict[str, type[FamilyWorkerSettings]]:
    """Each family's ``WorkerSettings`` class, the built-in ones imported first."""
    for family in FAMILIES:
        importlib.import_module(f"jobs.{family}")
    return {cls.family: cls for cls in FamilyWorkerSettings.__subclasses__()}


def cron_rows(settings: Settings, families: list[str], now: dt.datetime) -> list[CronRow]:
    """The cron jobs each family's ``WorkerSettings`` declares, with the next runs after ``now``."""
    rows = []
    zone = settings.timezone
    declared = _worker_settings()
    for family in families:
        for entry in getattr(declared.get(family), "_declared_crons", ()):
            schedule = Schedule.parse(entry.expression, zone, second=entry.second)
            runs = [run.astimezone(zone) for run in schedule.upcoming(now, NEXT_RUNS)]
            rows.append(CronRow(family, spec_of(entry.job).name, entry.expression, str(zone), runs))
    return rows


def _next_summary(zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    local_now = now.astimezone(zone)
    today = dt.datetime.combine(local_now.date(), SUMMARY_TIME, zone)
    if today.astimezone(dt.UTC) > now.astimezone(dt.UTC):
        return today
    return dt.datetime.combine(local_now.date() + dt.timedelta(days=1), SUMMARY_TIME, zone)


async def summary_zones(
    sessions: async_sessionmaker[AsyncSession], fallback: ZoneInfo, now: dt.datetime
) -> list[SummaryZone]:
    """Opted-in users per time zone, soonest summary first (unknown zones use ``fallback``)."""
    async with sessions() as session:
        rows = await session.execute(
            select(User.timezone, func.count())
            .where(User.daily_summary_enabled.is_(True))
            .group_by(User.timezone)
            .order_by(func.count().desc())
            .limit(MAX_ZONES)
        )
        counts = [(str(name), int(count)) for name, count in rows]
    zones = []
    for name, count in counts:
        try:
            zone, known = ZoneInfo(name), True
        except (ZoneInfoNotFoundError, ValueError):
            zone, known = fallback, False
        zones.append(SummaryZone(name, count, _next_summary(zone, now), known))
    return sorted(zones, key=lambda z: z.next_local.astimezone(dt.UTC) if z.next_local else now)
