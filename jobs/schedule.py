"""Cron schedules evaluated in an IANA time zone, correct across daylight-saving changes.

ARQ's own ``next_cron`` does wall-clock arithmetic, which goes wrong around DST changes, so
every worker runs with ``timezone=datetime.timezone.utc`` and gets :class:`ScheduledCronJob`
objects whose ``next_run`` is an aware UTC datetime computed here.

DST rules (the cronie / Vixie-cron convention):

* Wall-clock times are read in the schedule's time zone: a daily 08:00 job fires at 08:00
  local time on both sides of a change (23 or 25 hours apart in UTC).
* Fixed hour (hour field not ``*``): a wall time inside a spring-forward gap fires once,
  shifted forward by the gap (02:30 -> 03:30 when clocks jump 02:00 -> 03:00); a wall time
  that happens twice at fall-back fires once, at its first occurrence (``fold=0``).
* Hour field ``*``: the schedule follows real time.  Wall times in a gap never happen and
  are skipped; wall times that happen twice fire at both occurrences, so ``0 * * * *``
  fires 25 times on a fall-back day and 23 times on a spring-forward day.
* Results are strictly increasing and an instant never repeats.

The search assumes a single UTC offset change is shorter than three hours (true for every
DST rule; only date-line moves such as Samoa's in 2011 are larger).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arq.cron import CronJob
from arq.typing import WorkerCoroutine

__all__ = ["Schedule", "ScheduleError", "ScheduledCronJob", "cron_job"]

_SLACK = timedelta(hours=3)  # larger than any single UTC offset change
_MAX_DAYS = 8 * 366 + 2  # Feb 29 can be 8 years apart (2096 -> 2104)
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {
    "month": {name: number for number, name in enumerate(_MONTHS, start=1)},
    "day-of-week": {name: number for number, name in enumerate(_WEEKDAYS)},
}
_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class ScheduleError(ValueError):
    """A cron expression or time zone is invalid, or the schedule can never fire."""


def _value(text: str, name: str, low: int, high: int) -> int:
    named = _NAMES.get(name, {}).get(text.lower())
    if named is not None:
        return named
    if not text:
        raise ValueError(f"empty {name} value")
    if not (text.isascii() and text.isdecimal()):
        raise ValueError(f"{name} value {text!r} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"{name} {number} is out of range {low}-{high}")
    return number


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    """Parse one field ('*', 'a', 'a-b', '*/n', 'a-b/n', 'a/n', comma lists) into its values."""
    values: set[int] = set()
    for part in text.split(","):
        span, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdecimal()) or int(step_text) == 0:
                raise ValueError(f"{name} step {step_text!r} must be a positive integer")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        else:
            first_text, dash, last_text = span.partition("-")
            first = _value(first_text, name, low, high)
            last = _value(last_text, name, low, high) if dash else (high if slash else first)
            if first > last:
                raise ValueError(f"{name} range {span!r} is reversed")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed 5-field cron expression whose wall-clock times are read in ``timezone``."""

    expression: str
    timezone: ZoneInfo
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday
    seconds: frozenset[int] = frozenset({0})
    any_hour: bool = False
    any_day_of_month: bool = False
    any_day_of_week: bool = False

    @classmethod
    def parse(
        cls, expression: str, timezone: str | ZoneInfo = "UTC", *, second: str = "0"
    ) -> Schedule:
        """Parse ``minute hour day-of-month month day-of-week`` (or an @alias) in ``timezone``."""
        text = expression.strip()
        try:
            if text.startswith("@") and text.lower() not in _ALIASES:
                raise ValueError(f"unknown alias {text!r}")
            text_fields = _ALIASES.get(text.lower(), text).split()
            if not text_fields:
                raise ValueError("empty expression")
            if len(text_fields) != len(_FIELDS):
                names = " ".join(name for name, _, _ in _FIELDS)
                raise ValueError(f"expected 5 fields ({names}), got {len(text_fields)}")
            minutes, hours, doms, months, dows = (
                _parse_field(field, *spec) for field, spec in zip(text_fields, _FIELDS, strict=True)
            )
            seconds = _parse_field(second.strip(), "second", 0, 59)
        except ValueError as exc:
            raise ScheduleError(f"invalid cron expression {expression!r}: {exc}") from None
        if isinstance(timezone, str):
            try:
                timezone = ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ScheduleError(f"unknown time zone {timezone!r}") from None
        return cls(
            expression=text,
            timezone=timezone,
            minutes=minutes,
            hours=hours,
            days_of_month=doms,
            months=months,
            days_of_week=frozenset(day % 7 for day in dows),
            seconds=seconds,
            any_hour=text_fields[1] == "*",
            any_day_of_month=text_fields[2] == "*",
            any_day_of_week=text_fields[4] == "*",
        )

    def matches_date(self, d: date) -> bool:
        """Whether the schedule fires on local date ``d`` (Vixie rule: restricted dom OR dow)."""
        if d.month not in self.months:
            return False
        dom = d.day in self.days_of_month
        dow = d.isoweekday() % 7 in self.days_of_week
        if self.any_day_of_month or self.any_day_of_week:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime) -> datetime:
        """Return the first firing instant strictly after the aware ``after``, in UTC."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"next_after needs an aware datetime, got naive {after!r}")
        after = after.astimezone(UTC).replace(microsecond=0)
        # Around an offset change, wall-clock order and real-time order differ by up to the
        # change: scan from that much before ``after`` until that much past the best found.
        start = self._wall(after) - self._shift(after)
        best: datetime | None = None
        bound = datetime.max
        for candidate in self._walls(start):
            for instant in self._instants(candidate):
                if instant > after and (best is None or instant < best):
                    best, bound = instant, self._wall(instant) + self._shift(instant)
            if best is not None and candidate >= bound:
                return best
        if best is None:
            raise ScheduleError(f"cron expression {self.expression!r} can never fire")
        return best

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """Return the next ``count`` firing instants after ``after``, ascending, in UTC."""
        result: list[datetime] = []
        for _ in range(count):
            after = self.next_after(after)
            result.append(after)
        return result

    def describe(self) -> str:
        """Return a human-readable form such as ``0 8 * * * (Europe/Berlin)``."""
        return f"{self.expression} ({self.timezone})"

    def _wall(self, instant: datetime) -> datetime:
        return instant.astimezone(self.timezone).replace(tzinfo=None, fold=0)

    def _shift(self, instant: datetime) -> timedelta:
        """Return how much the UTC offset changes within ``_SLACK`` of ``instant``."""
        return abs(self._offset(instant + _SLACK) - self._offset(instant - _SLACK))

    def _offset(self, instant: datetime) -> timedelta:
        return self._wall(instant) - instant.replace(tzinfo=None)

    def _walls(self, start: datetime) -> Iterator[datetime]:
        """Yield matching naive local wall times >= ``start`` in wall-clock order."""
        hours, minutes, seconds = sorted(self.hours), sorted(self.minutes), sorted(self.seconds)
        day = start.date()
        for _ in range(_MAX_DAYS):
            first_day = day == start.date()
            if self.matches_date(day):
                for hour in hours:
                    if first_day and hour < start.hour:
                        continue
                    for minute in minutes:
                        if first_day and (hour, minute) < (start.hour, start.minute):
                            continue
                        for second in seconds:
                            wall = datetime(day.year, day.month, day.day, hour, minute, second)
                            if wall >= start:
                                yield wall
            day += timedelta(days=1)

    def _instants(self, wall: datetime) -> set[datetime]:
        """Return the UTC instants at which local ``wall`` fires, per the DST rules."""
        first = wall.replace(tzinfo=self.timezone).astimezone(UTC)
        if not self.any_hour:
            return {first}  # fold=0: gap times shift forward, repeated times fire once
        second = wall.replace(tzinfo=self.timezone, fold=1).astimezone(UTC)
        return {instant for instant in (first, second) if self._wall(instant) == wall}


@dataclass
class ScheduledCronJob(CronJob):
    """An ARQ cron job whose next run comes from a time-zone-aware :class:`Schedule`."""

    schedule: Schedule | None = None

    def calculate_next(self, prev_run: datetime) -> None:
        """Set ``next_run`` to the schedule's first firing strictly after ``prev_run`` (UTC)."""
        if self.schedule is None:
            raise RuntimeError(f"cron job {self.name!r} has no schedule")
        self.next_run = self.schedule.next_after(prev_run)


def cron_job(
    coroutine: Callable[..., Awaitable[Any]],
    *,
    name: str,
    schedule: Schedule,
    timeout: float | None = None,
    keep_result: float = 86400.0,
    max_tries: int = 1,
    run_at_startup: bool = False,
) -> ScheduledCronJob:
    """Build a unique ARQ cron job (id ``name:<unix ms of next_run>``) firing on ``schedule``.

    ``keep_result`` > 0 keeps the result key alive so other workers cannot re-enqueue the
    same firing after a fast run has finished.
    """
    if not inspect.iscoroutinefunction(coroutine):
        raise TypeError(f"{coroutine!r} is not a coroutine function")
    return ScheduledCronJob(
        name=name,
        coroutine=cast(WorkerCoroutine, coroutine),  # checked above; arq's protocol is narrower
        month=None,
        day=None,
        weekday=None,
        hour=None,
        minute=None,
        second=0,
        microsecond=0,
        run_at_startup=run_at_startup,
        unique=True,
        job_id=None,
        timeout_s=timeout,
        keep_result_s=keep_result,
        keep_result_forever=False,
        max_tries=max_tries,
        schedule=schedule,
    )
