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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.db.models import EmailStatus, OutboundEmail, User

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
        .limit(50)
    )
    lines = tuple(
        subject if status is EmailStatus.SENT else f"{subject} (could not be delivered)"
        for subject, status in rows
    )
    return Section("Messages from your assistant yesterday", lines) if lines else None
