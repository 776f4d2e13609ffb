"""Each family's WorkerSettings as ARQ reads it, and the email family's schedules."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from collections import Counter

import pytest
from arq.cron import CronJob
from arq.worker import get_kwargs

import jobs.email
from jobs.constants import REFUSED_PAYLOAD_JOB
from jobs.schedule import ScheduledCronJob
from jobs.serializer import serialize, serialize_in_worker
from jobs.settings import Settings, get_settings, load_settings
from jobs.worker import Cron, worker_options
from tests import sample_jobs
from tests.conftest import make_worker

UTC = dt.UTC


def test_get_kwargs_holds_shared_options_and_the_family_queue() -> None:
    """ARQ's own get_kwargs sees the Redis settings, hooks, serializer and queue of the family."""
    kwargs = get_kwargs(jobs.email.WorkerSettings)
    settings = get_settings()
    assert kwargs["queue_name"] == "jobs:queue:email"
    assert (
        kwargs["redis_settings"].host == "localhost"
        or settings.redis_url != "redis://localhost:6379"
    )
    assert kwargs["on_startup"] is not None and kwargs["on_shutdown"] is not None
    assert kwargs["job_serializer"] is serialize_in_worker
    refused = kwargs["job_deserializer"](serialize({"f": ["send_email"]}))
    assert refused["f"] == REFUSED_PAYLOAD_JOB
    assert kwargs["timezone"] is UTC
    assert kwargs["max_jobs"] == settings.email_worker.max_jobs
    assert kwargs["job_completion_wait"] == round(settings.email_worker.shutdown_grace)
    assert kwargs["health_check_interval"] == settings.worker_health_check_interval
    assert {f.name for f in kwargs["functions"]} == {
        "send_email",
        "deliver_email",
        "process_email_queue",
        "send_daily_email_summary",
        REFUSED_PAYLOAD_JOB,
    }
    assert all(isinstance(c, ScheduledCronJob) for c in kwargs["cron_jobs"])


def test_family_tuning_comes_from_settings() -> None:
    """EMAIL_WORKER__* settings set concurrency, default timeout and shutdown grace."""
    settings = load_settings(email_worker={"max_jobs": 3, "job_timeout": 42, "shutdown_grace": 7})
    options = worker_options("email", settings, [sample_jobs.echo], [])
    assert (options["max_jobs"], options["job_completion_wait"]) == (3, 7)
    [function] = [f for f in options["functions"] if f.name == "test_echo"]
    assert function.timeout_s == 42 + 5  # the runtime's own timeout fires 5 s before ARQ's


def _email_crons(zone: str) -> dict[str, CronJob]:
    settings = load_settings(schedule_timezone=zone)
    options = worker_options(
        "email", settings, [], list(vars(jobs.email.WorkerSettings)["_declared_crons"])
    )
    return {c.name: c for c in options["cron_jobs"]}


def _fire_times(cron: CronJob, start: dt.datetime, count: int) -> list[dt.datetime]:
    times = []
    cron.calculate_next(start)
    for _ in range(count):
        assert cron.next_run is not None
        times.append(cron.next_run)
        cron.calculate_next(cron.next_run)
    return times


def test_email_sweep_runs_every_five_minutes() -> None:
    """process_email_queue fires at every fifth minute, on the minute."""
    cron = _email_crons("UTC")["process_email_queue"]
    times = _fire_times(cron, dt.datetime(2026, 5, 1, 9, 58, 30, tzinfo=UTC), 4)
    assert [t.strftime("%H:%M:%S") for t in times] == [
        "10:00:00",
        "10:05:00",
        "10:10:00",
        "10:15:00",
    ]


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("UTC", dt.datetime(2026, 5, 1, 2, 7, tzinfo=UTC)),
        ("Asia/Kathmandu", dt.datetime(2026, 5, 1, 2, 7, tzinfo=UTC)),  # +05:45
        ("America/New_York", dt.datetime(2026, 3, 8, 6, 50, tzinfo=UTC)),  # clocks go forward
        ("Europe/Berlin", dt.datetime(2026, 10, 25, 0, 50, tzinfo=UTC)),  # clocks go back
    ],
)
def test_daily_summary_runs_on_every_utc_quarter_hour(zone: str, start: dt.datetime) -> None:
    """send_daily_email_summary fires every 15 minutes on :00/:15/:30/:45 UTC, across DST too.

    Every UTC offset in use is a multiple of 15 minutes, so each user's local 08:00 is a run.
    """
    cron = _email_crons(zone)["send_daily_email_summary"]
    times = _fire_times(cron, start, 12)
    first = start.replace(minute=start.minute // 15 * 15, second=0) + dt.timedelta(minutes=15)
    assert times == [first + dt.timedelta(minutes=15 * i) for i in range(12)]


@pytest.mark.usefixtures("engine")
async def test_cron_fires_once_per_time_across_two_workers(settings: Settings) -> None:
    """Two workers of one family running a 2-second schedule run each firing exactly once."""
    crons = [Cron(sample_jobs.tick, "* * * * *", second="*/2")]
    workers = [await make_worker(settings, [], crons=crons, burst=False) for _ in range(2)]
    tasks = [asyncio.create_task(w.main()) for w in workers]
    await asyncio.sleep(5.5)
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes
    pool = workers[0].pool
    ticks = Counter(t.decode() for t in await pool.lrange("ticks", 0, -1))
    for worker in workers:
        await worker.close()
    assert len(ticks) >= 2, ticks
    assert set(ticks.values()) == {1}, ticks
    assert sum(w.jobs_complete for w in workers) == len(ticks)
    assert all(name.startswith("test_tick:") for name in ticks)


def test_invalid_setting_stops_worker_start_with_one_clear_line() -> None:
    """`arq jobs.email.WorkerSettings` with SCHEDULE_TIMEZONE=Mars/Base exits naming it."""
    result = subprocess.run(
        [sys.executable, "-m", "arq", "jobs.email.WorkerSettings", "--check"],
        env={"SCHEDULE_TIMEZONE": "Mars/Base", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "jobs: invalid configuration: SCHEDULE_TIMEZONE: unknown IANA time zone 'Mars/Base' "
        "(e.g. 'Europe/Berlin')"
    )
