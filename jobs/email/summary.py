"""The daily summary: a plain-text and HTML digest of a user's day, built from sections.

A section is an async function registered with :func:`summary_section`; it reads what it needs
for one user and one local date and returns a :class:`Section`, or None to stay out of that
day's summary. New data (calendar events, AI tasks, Notion pages) gains a section by
registering one more function — the summary itself does not change.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.db.ai_models import AiTask, AiTaskState
from jobs.db.models import EmailStatus, OutboundEmail, User
from jobs.db.sync_models import CalendarEvent, NotionPage

__all__ = ["DaySummary", "Section", "SummaryWindow", "build_summary", "summary_section"]

#: Prefix of the outbox ``dedupe_key`` of summaries: ``daily-summary:<user id>:<date>``.
SUMMARY_KEY_PREFIX = "daily-summary"


@dataclass(frozen=True)
class SummaryWindow:
    """The user's local day the summary covers, as a UTC interval."""

    day: dt.date
    zone: ZoneInfo

    @property
    def start(self) -> dt.datetime:
        """Local midnight at the start of the day, in UTC."""
        return dt.datetime.combine(self.day, dt.time(), self.zone).astimezone(dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """Local midnight at the end of the day, in UTC."""
        next_day = self.day + dt.timedelta(days=1)
        return dt.datetime.combine(next_day, dt.time(), self.zone).astimezone(dt.UTC)


@dataclass(frozen=True)
class Section:
    """One titled list of lines in the summary."""

    title: str
    lines: tuple[str, ...]


SectionBuilder = Callable[[AsyncSession, User, SummaryWindow], Awaitable[Section | None]]
_SECTIONS: list[tuple[int, str, SectionBuilder]] = []


def summary_section(*, order: int) -> Callable[[SectionBuilder], SectionBuilder]:
    """Register a section builder; sections appear by ascending ``order``."""

    def register(builder: SectionBuilder) -> SectionBuilder:
        key = f"{builder.__module__}.{builder.__qualname__}"
        if all(existing != key for _, existing, _ in _SECTIONS):
            _SECTIONS.append((order, key, builder))
            _SECTIONS.sort(key=lambda entry: entry[0])
        return builder

    return register


@dataclass(frozen=True)
class DaySummary:
    """A rendered summary, ready for the outbox."""

    subject: str
    text: str
    html: str
    sections: tuple[Section, ...]


def _render(user: User, window: SummaryWindow, sections: list[Section]) -> DaySummary:
    name = user.display_name or user.email
    heading = f"Your day, {window.day.strftime('%A %d %B %Y')}"
    text_parts = [f"Hello {name},", "", heading, ""]
    html_parts = [f"<p>Hello {html.escape(name)},</p>", f"<h1>{html.escape(heading)}</h1>"]
    if not sections:
        text_parts.append("Nothing on record for today.")
        html_parts.append("<p>Nothing on record for today.</p>")
    for section in sections:
        text_parts += [section.title, "-" * len(section.title)]
        text_parts += [f"* {line}" for line in section.lines] + [""]
        items = "".join(f"<li>{html.escape(line)}</li>" for line in section.lines)
        html_parts.append(f"<h2>{html.escape(section.title)}</h2><ul>{items}</ul>")
    return DaySummary(
        subject=f"Your daily summary for {window.day.isoformat()}",
        text="\n".join(text_parts).rstrip() + "\n",
        html="<html><body>" + "".join(html_parts) + "</body></html>",
        sections=tuple(sections),
    )


async def build_summary(session: AsyncSession, user: User, window: SummaryWindow) -> DaySummary:
    """Run every registered section for ``user`` and render the summary."""
    sections = []
    for _, _, builder in _SECTIONS:
        section = await builder(session, user, window)
        if section is not None and section.lines:
            sections.append(section)
    return _render(user, window, sections)


MAX_LINES = 50


@summary_section(order=10)
async def todays_events(session: AsyncSession, user: User, window: SummaryWindow) -> Section | None:
    """The user's calendar for the day: all-day events first, then timed ones by start."""
    day_events = await session.execute(
        select(CalendarEvent)
        .where(
            CalendarEvent.user_id == user.id,
            CalendarEvent.status != "cancelled",
            or_(
                and_(
                    CalendarEvent.all_day.is_(True),
                    CalendarEvent.start_date <= window.day,
                    CalendarEvent.end_date > window.day,
                ),
                and_(
                    CalendarEvent.all_day.is_(False),
                    CalendarEvent.starts_at < window.end,
                    CalendarEvent.ends_at > window.start,
                ),
            ),
        )
        .order_by(CalendarEvent.all_day.desc(), CalendarEvent.starts_at, CalendarEvent.id)
        .limit(MAX_LINES)
    )
    lines = []
    for event in day_events.scalars():
        title = event.summary or "(no title)"
        if event.all_day or event.starts_at is None:
            lines.append(f"All day: {title}")
            continue
        start = event.starts_at.astimezone(window.zone).strftime("%H:%M")
        where = f" ({event.location})" if event.location else ""
        lines.append(f"{start} {title}{where}")
    return Section("Today's calendar", tuple(lines)) if lines else None


@summary_section(order=20)
async def tasks_due_today(
    session: AsyncSession, user: User, window: SummaryWindow
) -> Section | None:
    """The user's active AI tasks scheduled to run during the day."""
    tasks = await session.scalars(
        select(AiTask)
        .where(
            AiTask.user_id == user.id,
            AiTask.state == AiTaskState.ACTIVE,
            AiTask.next_run_at >= window.start,
            AiTask.next_run_at < window.end,
        )
        .order_by(AiTask.next_run_at)
        .limit(MAX_LINES)
    )
    lines = tuple(
        f"{task.next_run_at.astimezone(window.zone).strftime('%H:%M')} "
        f"{task.title or task.instruction[:80]}"
        for task in tasks
        if task.next_run_at is not None
    )
    return Section("Your assistant will", lines) if lines else None


@summary_section(order=30)
async def notion_pages_edited(
    session: AsyncSession, user: User, window: SummaryWindow
) -> Section | None:
    """The user's Notion pages edited in the 24 hours before the summary's day."""
    pages = await session.scalars(
        select(NotionPage)
        .where(
            NotionPage.user_id == user.id,
            NotionPage.last_edited_time >= window.start - dt.timedelta(days=1),
            NotionPage.last_edited_time < window.start,
        )
        .order_by(NotionPage.last_edited_time.desc())
        .limit(MAX_LINES)
    )
    lines = tuple(page.title or "(untitled)" for page in pages)
    return Section("Notion pages edited yesterday", lines) if lines else None


@summary_section(order=90)
async def assistant_messages(
    session: AsyncSession, user: User, window: SummaryWindow
) -> Section | None:
    """The e-mails the assistant sent the user in the 24 hours before the summary's day."""
    since = window.start - dt.timedelta(days=1)
    rows = await session.execute(
        select(OutboundEmail.subject, OutboundEmail.status)
        .where(
            OutboundEmail.user_id == user.id,
            OutboundEmail.created_at >= since,
            OutboundEmail.created_at < window.start,
            OutboundEmail.status.in_([EmailStatus.SENT, EmailStatus.FAILED]),
            ~OutboundEmail.dedupe_key.startswith(SUMMARY_KEY_PREFIX)
            | OutboundEmail.dedupe_key.is_(None),
        )
        .order_by(OutboundEmail.created_at)
        .limit(MAX_LINES)
    )
    lines = tuple(
        subject if status is EmailStatus.SENT else f"{subject} (could not be delivered)"
        for subject, status in rows
    )
    return Section("Messages from your assistant yesterday", lines) if lines else None
