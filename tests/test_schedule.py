import itertools
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob
from arq.utils import to_unix_ms
from arq.worker import Worker

from jobs.schedule import Schedule, ScheduledCronJob, ScheduleError, cron_job

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """Build an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def firings_on(schedule: Schedule, day: date) -> list[datetime]:
    """Return every firing whose local date is ``day``."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=schedule.timezone)
    instant, result = midnight - timedelta(seconds=1), []
    while (instant := schedule.next_after(instant)).astimezone(schedule.timezone).date() <= day:
        result.append(instant)
    return result


async def noop(ctx: dict[Any, Any]) -> None:
    """Do nothing; stands in for a real job."""


@pytest.mark.parametrize(
    ("expression", "minutes", "hours", "days", "months", "weekdays"),
    [
        ("* * * * *", set(range(60)), set(range(24)), set(range(1, 32)), set(range(1, 13)),
         set(range(7))),
        ("5 4 3 2 1", {5}, {4}, {3}, {2}, {1}),
        ("1-3 22-23 10-12 6-7 2-4", {1, 2, 3}, {22, 23}, {10, 11, 12}, {6, 7}, {2, 3, 4}),
        ("*/15 */6 */10 */4 */3", {0, 15, 30, 45}, {0, 6, 12, 18}, {1, 11, 21, 31},
         {1, 5, 9}, {0, 3, 6}),
        ("10-20/5 1-9/4 1-7/3 2-12/5 1-5/2", {10, 15, 20}, {1, 5, 9}, {1, 4, 7}, {2, 7, 12},
         {1, 3, 5}),
        ("50/5 20/2 25/3 11/1 4/2", {50, 55}, {20, 22}, {25, 28, 31}, {11, 12}, {4, 6}),
        ("0,30,59 0,12 1,15 1,7 0,6", {0, 30, 59}, {0, 12}, {1, 15}, {1, 7}, {0, 6}),
        ("1-3,10-20/5,59 * * * *", {1, 2, 3, 10, 15, 20, 59}, set(range(24)), set(range(1, 32)),
         set(range(1, 13)), set(range(7))),
        ("0 0 1 JAN-mar,Dec Mon-Fri", {0}, {0}, {1}, {1, 2, 3, 12}, {1, 2, 3, 4, 5}),
        ("0 0 1 jun SUN,sat", {0}, {0}, {1}, {6}, {0, 6}),
        ("0 0 * * 7", {0}, {0}, set(range(1, 32)), set(range(1, 13)), {0}),
        ("0 0 * * 5-7", {0}, {0}, set(range(1, 32)), set(range(1, 13)), {5, 6, 0}),
    ],
)  # fmt: skip
def test_parse_field_syntax(
    expression: str,
    minutes: set[int],
    hours: set[int],
    days: set[int],
    months: set[int],
    weekdays: set[int],
) -> None:
    """Each field syntax (wildcard, number, range, steps, lists, names, 7=Sunday) parses right."""
    schedule = Schedule.parse(expression)
    assert schedule.minutes == minutes
    assert schedule.hours == hours
    assert schedule.days_of_month == days
    assert schedule.months == months
    assert schedule.days_of_week == weekdays
    assert schedule.seconds == {0}
    assert schedule.timezone == ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("alias", "expansion"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases_expand(alias: str, expansion: str) -> None:
    """Every @alias parses to the same fields and wildcard flags as its 5-field expansion."""
    parsed, expected = Schedule.parse(alias, BERLIN), Schedule.parse(expansion, BERLIN)
    assert parsed.expression == alias
    assert {**vars(parsed), "expression": expansion} == vars(expected)


def test_wildcard_flags_and_second_field() -> None:
    """Wildcard flags record literal '*' fields and the second field uses cron syntax."""
    schedule = Schedule.parse("0 * 1 * mon", second="*/20")
    assert (schedule.any_hour, schedule.any_day_of_month, schedule.any_day_of_week) == (
        True,
        False,
        False,
    )
    assert schedule.seconds == {0, 20, 40}
    assert not Schedule.parse("0 */2 * * *").any_hour


def test_describe_names_expression_and_zone() -> None:
    """describe() shows the expression followed by the time zone."""
    assert Schedule.parse(" 0 8 * * * ", "Europe/Berlin").describe() == "0 8 * * * (Europe/Berlin)"


@pytest.mark.parametrize(
    ("expression", "zone", "second", "message"),
    [
        ("0 8 * * *", "Mars/Olympus", "0", "unknown time zone 'Mars/Olympus'"),
        ("0 8 * * *", "", "0", "unknown time zone ''"),
        ("61 * * * *", "UTC", "0", "'61 * * * *': minute 61 is out of range 0-59"),
        ("0 24 * * *", "UTC", "0", "hour 24 is out of range 0-23"),
        ("0 0 0 * *", "UTC", "0", "day-of-month 0 is out of range 1-31"),
        ("0 0 * 13 *", "UTC", "0", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "UTC", "0", "day-of-week 8 is out of range 0-7"),
        ("* * * *", "UTC", "0", "'* * * *': expected 5 fields"),
        ("* * * * * *", "UTC", "0", "got 6"),
        ("*/0 * * * *", "UTC", "0", "minute step '0' must be a positive integer"),
        ("* */x * * *", "UTC", "0", "hour step 'x' must be a positive integer"),
        ("* * * * 1/", "UTC", "0", "day-of-week step '' must be a positive integer"),
        ("", "UTC", "0", "invalid cron expression '': empty expression"),
        ("   ", "UTC", "0", "empty expression"),
        ("1,,2 * * * *", "UTC", "0", "empty minute value"),
        ("5- * * * *", "UTC", "0", "empty minute value"),
        ("0 0 * foo *", "UTC", "0", "month value 'foo' is not a number"),
        ("0 0 * * jan", "UTC", "0", "day-of-week value 'jan' is not a number"),
        ("30-10 * * * *", "UTC", "0", "minute range '30-10' is reversed"),
        ("@fortnightly", "UTC", "0", "unknown alias '@fortnightly'"),
        ("* * * * *", "UTC", "60", "second 60 is out of range 0-59"),
    ],
)
def test_invalid_input_names_the_bad_part(
    expression: str, zone: str, second: str, message: str
) -> None:
    """Each kind of invalid expression or zone raises ScheduleError naming the bad part."""
    with pytest.raises(ScheduleError, match=message.replace("*", r"\*")):
        Schedule.parse(expression, zone, second=second)


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        # 08:00 CET = 07:00Z, then 08:00 CEST = 06:00Z from the spring-forward Sunday on.
        (BERLIN, utc(2026, 3, 27, 12), [(2026, 3, 28, 7), (2026, 3, 29, 6), (2026, 3, 30, 6)]),
        (BERLIN, utc(2026, 10, 23, 12), [(2026, 10, 24, 6), (2026, 10, 25, 7), (2026, 10, 26, 7)]),
        # 08:00 EST = 13:00Z, 08:00 EDT = 12:00Z.
        (NEW_YORK, utc(2026, 3, 6, 18), [(2026, 3, 7, 13), (2026, 3, 8, 12), (2026, 3, 9, 12)]),
        (
            NEW_YORK,
            utc(2026, 10, 30, 18),
            [(2026, 10, 31, 12), (2026, 11, 1, 13), (2026, 11, 2, 13)],
        ),
    ],
)
def test_daily_job_keeps_local_time_across_dst(
    zone: ZoneInfo, after: datetime, expected: list[tuple[int, int, int, int]]
) -> None:
    """A daily 08:00 job fires at 08:00 local time on both sides of each 2026 DST change."""
    assert Schedule.parse("0 8 * * *", zone).upcoming(after, 3) == [utc(*e) for e in expected]


def test_gap_time_fires_once_shifted_forward() -> None:
    """A 02:30 daily job fires once at 03:30 CEST on the Berlin spring-forward day."""
    schedule = Schedule.parse("30 2 * * *", BERLIN)
    firings = schedule.upcoming(utc(2026, 3, 28, 0), 3)
    assert firings == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    assert firings[1].astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)


def test_repeated_time_fires_once_at_first_occurrence() -> None:
    """A 02:30 daily job fires once on the fall-back day, at the first 02:30 (00:30Z)."""
    schedule = Schedule.parse("30 2 * * *", BERLIN)
    assert schedule.upcoming(utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_every_five_minutes_follows_real_time_through_fall_back() -> None:
    """'*/5 * * * *' fires every 5 real minutes, 12 per hour, with no duplicates at fall-back."""
    firings = Schedule.parse("*/5 * * * *", BERLIN).upcoming(utc(2026, 10, 24, 22, 59), 72)
    assert firings[0] == utc(2026, 10, 24, 23)
    assert all(b - a == timedelta(minutes=5) for a, b in itertools.pairwise(firings))
    for hour in range(6):
        start = utc(2026, 10, 24, 23) + timedelta(hours=hour)
        assert sum(start <= f < start + timedelta(hours=1) for f in firings) == 12


@pytest.mark.parametrize(
    ("zone", "day", "count"),
    [
        (BERLIN, date(2026, 10, 25), 25),
        (BERLIN, date(2026, 3, 29), 23),
        (BERLIN, date(2026, 6, 1), 24),
        (NEW_YORK, date(2026, 11, 1), 25),
        (NEW_YORK, date(2026, 3, 8), 23),
    ],
)
def test_hourly_job_follows_real_hours(zone: ZoneInfo, day: date, count: int) -> None:
    """An hourly job fires once per real hour: 25 times on fall-back days, 23 on spring ones."""
    firings = firings_on(Schedule.parse("0 * * * *", zone), day)
    assert len(firings) == len(set(firings)) == count
    assert firings == sorted(firings)


def test_fixed_hour_with_any_minute_fires_only_in_first_pass() -> None:
    """'* 2 * * *' fires 60 times on the fall-back day, all during the first 02:00-02:59."""
    firings = firings_on(Schedule.parse("* 2 * * *", BERLIN), date(2026, 10, 25))
    assert firings == [utc(2026, 10, 25, 0) + timedelta(minutes=m) for m in range(60)]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        (
            "0 1 * * 0",
            utc(2026, 10, 17),
            [(2026, 10, 17, 23), (2026, 10, 24, 23), (2026, 11, 1, 0)],
        ),
        ("0 1 * * 7", utc(2026, 3, 21), [(2026, 3, 22, 0), (2026, 3, 29, 0), (2026, 4, 4, 23)]),
        ("0 3 * * sun", utc(2026, 3, 21), [(2026, 3, 22, 2), (2026, 3, 29, 1), (2026, 4, 5, 1)]),
    ],
)
def test_weekly_sunday_jobs(
    expression: str, after: datetime, expected: list[tuple[int, int, int, int]]
) -> None:
    """Weekly Sunday jobs fire every Sunday at the local time, across DST changes."""
    assert Schedule.parse(expression, BERLIN).upcoming(after, 3) == [utc(*e) for e in expected]


def test_day_of_month_or_day_of_week_rule() -> None:
    """With both dom and dow restricted a day matches either; with one '*' both must match."""
    either = Schedule.parse("0 0 13 * fri")
    only_13th = Schedule.parse("0 0 13 * *")
    only_friday = Schedule.parse("0 0 * * fri")
    friday_not_13th, thursday_13th, monday = date(2026, 11, 6), date(2026, 8, 13), date(2026, 11, 9)
    assert [either.matches_date(d) for d in (friday_not_13th, thursday_13th, monday)] == [
        True,
        True,
        False,
    ]
    assert [only_13th.matches_date(d) for d in (friday_not_13th, thursday_13th)] == [False, True]
    assert [only_friday.matches_date(d) for d in (friday_not_13th, thursday_13th)] == [True, False]
    assert not Schedule.parse("0 0 13 1 fri").matches_date(friday_not_13th)  # month still applies
    assert either.upcoming(utc(2026, 11, 1), 3) == [
        utc(2026, 11, 6),
        utc(2026, 11, 13),
        utc(2026, 11, 20),
    ]


def test_february_29_waits_for_leap_years() -> None:
    """'0 12 29 2 *' fires only on Feb 29, skipping the non-leap year 2100."""
    schedule = Schedule.parse("0 12 29 2 *", BERLIN)
    assert schedule.upcoming(utc(2026, 11, 28), 2) == [utc(2028, 2, 29, 11), utc(2032, 2, 29, 11)]
    assert schedule.next_after(utc(2096, 3, 1)) == utc(2104, 2, 29, 11)


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 31 4,6,9,11 *"])
def test_never_firing_expression_raises(expression: str) -> None:
    """An expression that matches no real date raises ScheduleError naming it."""
    with pytest.raises(ScheduleError, match="can never fire"):
        Schedule.parse(expression).next_after(utc(2026, 1, 1))


def test_naive_after_is_refused() -> None:
    """next_after refuses a naive datetime with ValueError."""
    with pytest.raises(ValueError, match="aware"):
        Schedule.parse("0 8 * * *", BERLIN).next_after(datetime(2026, 1, 1, 12))


def test_result_is_strictly_after_in_utc_without_microseconds() -> None:
    """next_after returns an aware UTC instant strictly later than an after in any zone."""
    schedule = Schedule.parse("0 8 * * *", BERLIN)
    at_firing = datetime(2026, 11, 2, 8, tzinfo=BERLIN)
    result = schedule.next_after(at_firing)
    assert result == utc(2026, 11, 3, 7)
    assert result.tzinfo is UTC
    assert result.microsecond == 0
    assert schedule.next_after(at_firing - timedelta(microseconds=1)) == at_firing


def test_every_two_seconds_is_correct_and_fast() -> None:
    """An every-2-seconds schedule is found near the end of a day without scanning the day."""
    schedule = Schedule.parse("* * * * *", BERLIN, second="*/2")
    late = datetime(2026, 11, 28, 23, 59, 0, 500_000, tzinfo=BERLIN)
    assert schedule.next_after(late) == utc(2026, 11, 28, 22, 59, 2)
    assert schedule.next_after(late + timedelta(seconds=59)) == utc(2026, 11, 28, 23)
    assert schedule.upcoming(late, 3) == [utc(2026, 11, 28, 22, 59, s) for s in (2, 4, 6)]
    # Through the fall-back night it fires every 2 real seconds.
    night = schedule.upcoming(utc(2026, 10, 25, 0, 59, 57), 4)
    assert night == [utc(2026, 10, 25, 0, 59, 58)] + [utc(2026, 10, 25, 1, 0, s) for s in (0, 2, 4)]
    started = time.perf_counter()
    for _ in range(100):
        schedule.next_after(late)
    assert time.perf_counter() - started < 1.0


def test_cron_job_builds_unique_scheduled_cron_job() -> None:
    """cron_job builds a unique CronJob whose next_run comes from the schedule."""
    schedule = Schedule.parse("0 8 * * *", BERLIN)
    job = cron_job(noop, name="digest", schedule=schedule, timeout=30)
    assert isinstance(job, CronJob)
    assert (job.unique, job.job_id, job.keep_result_s, job.max_tries) == (True, None, 86400.0, 1)
    assert (job.timeout_s, job.microsecond, job.run_at_startup) == (30, 0, False)
    job.calculate_next(utc(2026, 3, 28, 12))
    assert job.next_run == utc(2026, 3, 29, 6)


def test_cron_job_refuses_non_coroutine_and_missing_schedule() -> None:
    """cron_job rejects a plain function and a ScheduledCronJob without a schedule fails."""
    with pytest.raises(TypeError, match="not a coroutine function"):
        cron_job(print, name="bad", schedule=Schedule.parse("@daily"))  # type: ignore[arg-type]
    job = cron_job(noop, name="x", schedule=Schedule.parse("@daily"))
    bare = ScheduledCronJob(**{**vars(job), "schedule": None})
    with pytest.raises(RuntimeError, match="no schedule"):
        bare.calculate_next(utc(2026, 1, 1))


async def test_worker_run_cron_uses_schedule() -> None:
    """A real ARQ Worker in UTC sets next_run through calculate_next, with no Redis needed."""
    job = cron_job(noop, name="digest", schedule=Schedule.parse("0 8 * * *", BERLIN))
    worker = Worker(
        cron_jobs=[job],
        timezone=UTC,
        redis_settings=RedisSettings(host="127.0.0.1", port=1),
        handle_signals=False,
    )
    await worker.run_cron(utc(2026, 3, 28, 12), 0.5)  # first pass only computes next_run
    assert job.next_run == utc(2026, 3, 29, 6)


class RecordingPool:
    """Stand-in for ArqRedis that records the job ids cron enqueues."""

    def __init__(self) -> None:
        self.job_ids: list[str | None] = []

    async def enqueue_job(self, function: str, **kwargs: Any) -> None:
        """Record the id of the enqueued job."""
        self.job_ids.append(kwargs["_job_id"])


async def test_workers_enqueue_the_same_job_id() -> None:
    """Two workers reach the same firing at slightly different times and derive one job id."""
    schedule = Schedule.parse("30 2 * * *", BERLIN)
    pools, jobs = [RecordingPool(), RecordingPool()], []
    for pool, skew in zip(pools, (0.2, 0.7), strict=True):
        job = cron_job(noop, name="report", schedule=schedule)
        worker = Worker(
            cron_jobs=[job],
            timezone=UTC,
            redis_pool=cast(ArqRedis, pool),
            handle_signals=False,
        )
        await worker.run_cron(utc(2026, 3, 28, 12, 0, 0), 0.5)
        await worker.run_cron(utc(2026, 3, 29, 1, 29, 59) + timedelta(seconds=skew), 0.5)
        jobs.append(job)
    expected_id = f"report:{to_unix_ms(utc(2026, 3, 29, 1, 30))}"
    assert pools[0].job_ids == pools[1].job_ids == [expected_id]
    assert all(job.next_run == utc(2026, 3, 30, 0, 30) for job in jobs)
