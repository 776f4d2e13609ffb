"""The daily summary at 08:00 in each user's own time zone, once per local day."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from contextvars import ContextVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import OutboundEmail, User
from jobs.email import send_daily_email_summary, summary_section
from jobs.email.daily import queue_due_summaries, summary_due_day
from jobs.email.summary import Section, SummaryWindow
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.zones import zone_at_local_hour

UTC = dt.UTC
KATHMANDU, NEW_YORK, GMT = (ZoneInfo(z) for z in ("Asia/Kathmandu", "America/New_York", "UTC"))


class Hold:
    """Holds a summary run inside its section building until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()


_HOLD: ContextVar[Hold | None] = ContextVar("summary_hold", default=None)


@summary_section(order=1000)
async def held_in_tests(session: AsyncSession, user: User, window: SummaryWindow) -> Section | None:
    """Adds nothing; makes the run of a test that set a Hold wait until it is released."""
    hold = _HOLD.get()
    if hold is not None:
        hold.entered.set()
        await hold.release.wait()
    return None


def at(text: str) -> dt.datetime:
    """An aware UTC datetime from ``YYYY-MM-DD HH:MM[:SS]``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "now", "due"),
    [
        (KATHMANDU, "2026-03-10 02:14:59", None),  # 07:59:59 at +05:45
        (KATHMANDU, "2026-03-10 02:15:00", dt.date(2026, 3, 10)),
        (NEW_YORK, "2026-03-07 12:59:59", None),  # Saturday, EST (-05:00): 07:59:59
        (NEW_YORK, "2026-03-07 13:00:00", dt.date(2026, 3, 7)),
        (NEW_YORK, "2026-03-08 11:59:59", None),  # Sunday, clocks went forward: EDT
        (NEW_YORK, "2026-03-08 12:00:00", dt.date(2026, 3, 8)),
        (NEW_YORK, "2026-11-01 12:59:59", None),  # clocks went back to EST that night
        (NEW_YORK, "2026-11-01 13:00:00", dt.date(2026, 11, 1)),
        (NEW_YORK, "2026-03-09 03:59:59", dt.date(2026, 3, 8)),  # 23:59:59 EDT, still due
    ],
)
def test_summary_is_due_from_0800_local_time(zone: ZoneInfo, now: str, due: dt.date | None) -> None:
    """A user's summary is due from 08:00 on the local clock (DST-correct) to the day's end."""
    assert summary_due_day(zone, at(now), tolerance=dt.timedelta(0)) == due


async def add_users(sessions: async_sessionmaker[AsyncSession], **zones: str) -> dict[str, int]:
    """One opted-in user per name with the given time zone; ids by name."""
    async with sessions.begin() as session:
        users = {
            name: User(email=f"{name}@example.com", timezone=zone) for name, zone in zones.items()
        }
        session.add_all(users.values())
        session.add(User(email="optout@example.com", timezone="UTC", daily_summary_enabled=False))
        await session.flush()
        return {name: user.id for name, user in users.items()}


async def summaries(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """(recipient, dedupe key) of every queued summary, sorted."""
    async with sessions() as session:
        rows = await session.execute(select(OutboundEmail.to_address, OutboundEmail.dedupe_key))
        return sorted((to, str(key)) for to, key in rows)


@pytest.mark.usefixtures("engine")
async def test_two_runs_at_once_and_reruns_queue_each_local_days_summary_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A run held while another runs, then re-runs: one summary per user and local date."""
    ids = await add_users(
        sessions, kathmandu="Asia/Kathmandu", new_york="America/New_York", la="America/Los_Angeles"
    )
    now = at("2026-03-08 12:00")  # 17:45 in Kathmandu, 08:00 in New York, 05:00 in LA
    hold = Hold()

    async def held_run() -> dict[str, int]:
        _HOLD.set(hold)
        return await queue_due_summaries(sessions, now=now, fallback_zone=GMT)

    first = asyncio.create_task(held_run())
    await asyncio.wait_for(hold.entered.wait(), timeout=30)
    second = await queue_due_summaries(sessions, now=now, fallback_zone=GMT)
    hold.release.set()
    first_counts = await first
    assert (second["queued"], first_counts["queued"], first_counts["already_queued"]) == (2, 0, 2)
    assert second["not_yet_due"] == first_counts["not_yet_due"] == 1
    expected = [
        ("kathmandu@example.com", f"daily-summary:{ids['kathmandu']}:2026-03-08"),
        ("new_york@example.com", f"daily-summary:{ids['new_york']}:2026-03-08"),
    ]
    assert await summaries(sessions) == expected
    # later the same local day: nothing more; LA's 08:00 (16:00 UTC) has come
    later = await queue_due_summaries(sessions, now=at("2026-03-08 16:00"), fallback_zone=GMT)
    assert (later["queued"], later["already_queued"]) == (1, 2)
    # 00:00 in Kathmandu is the next local day there, not yet 08:00; New York is still on the 8th
    night = await queue_due_summaries(sessions, now=at("2026-03-08 18:15"), fallback_zone=GMT)
    assert (night["queued"], night["already_queued"], night["not_yet_due"]) == (0, 2, 1)
    next_morning = await queue_due_summaries(
        sessions, now=at("2026-03-09 02:15"), fallback_zone=GMT
    )
    assert next_morning["queued"] == 1
    assert (
        "kathmandu@example.com",
        f"daily-summary:{ids['kathmandu']}:2026-03-09",
    ) in await summaries(sessions)
    assert len(await summaries(sessions)) == 4


@pytest.mark.usefixtures("engine")
async def test_the_job_queues_only_users_past_their_local_0800(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Users at local noon get a summary, at 04:00 not; an unknown zone falls back, warning."""
    noon, night = zone_at_local_hour(12), zone_at_local_hour(4)
    await add_users(sessions, noon=noon, night=night, lost="Mars/Base")
    in_noon_zone = settings.model_copy(update={"schedule_timezone": noon})
    await pool.enqueue_job("send_daily_email_summary", _job_id="summary-1")
    with caplog.at_level(logging.WARNING, logger="jobs.email"):
        await run_burst(await make_worker(in_noon_zone, [send_daily_email_summary]))
    result = await (await pool.job("summary-1")).result(timeout=1)
    assert result == {"queued": 2, "already_queued": 0, "not_yet_due": 1, "unknown_timezone": 1}
    assert [to for to, _ in await summaries(sessions)] == ["lost@example.com", "noon@example.com"]
    assert f"unknown time zone 'Mars/Base'; using SCHEDULE_TIMEZONE {noon}" in caplog.text
