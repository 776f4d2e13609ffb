"""What a sync did inside its try — retries, listings started over — shows in its log and span."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.settings import Settings
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import connect_google, connect_notion, run_sync, sync_settings

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeGoogleCalendar, FakeNotion]]:
    """Both fakes, running."""
    async with FakeGoogleCalendar() as google, FakeNotion() as notion:
        yield google, notion


def events_of(spans: InMemorySpanExporter, job: str) -> list[tuple[str, dict[str, object]]]:
    """The events on the last CONSUMER span of ``job``, with their attributes."""
    consumers: list[ReadableSpan] = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CONSUMER and (s.attributes or {}).get("messaging.arq.job.name") == job
    ]
    return [(e.name, dict(e.attributes or {})) for e in consumers[-1].events]


def warnings_from(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    """The WARNING lines ``logger`` (or its children) wrote."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith(logger)
    ]


async def test_a_429_and_410_resyncs_show_on_the_calendar_sync(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The retried 429 and both 410s (calendar list, events) are WARNING lines and span events."""
    google, notion = fakes
    sync = sync_settings(settings, google, notion)
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    google.put_event("primary", summary="x")
    await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    google.expire_sync_tokens()
    google.fail(429, "rateLimitExceeded", retry_after=0.2)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["status"] == "synced" and result["full_syncs"] == 1
    events = events_of(spans, "sync_calendar_account")
    assert [name for name, _ in events] == ["http.retry", "listing.restart", "listing.restart"]
    retry, *restarts = events
    assert retry[1]["http.response.status_code"] == 429 and retry[1]["jobs.wait.seconds"] == 0.2
    assert [r[1]["sync.listing"] for r in restarts] == ["calendar list", "calendar events"]
    assert all(
        (r[1]["sync.restart.reason"], r[1]["http.response.status_code"], r[1]["jobs.attempt"])
        == ("sync_token_expired", 410, 1)
        for r in restarts
    )
    lines = warnings_from(caplog, "jobs.")
    assert lines[0].endswith("HTTP 429, attempt 1 of 4, retrying in 0.20 s")
    assert lines[1:] == [
        f"google account {account_id}: calendar list: HTTP 410 sync token expired, "
        "listing everything again (restart 1)",
        f"google account {account_id}: calendar events: HTTP 410 sync token expired, "
        "listing everything again (restart 1)",
    ]


async def test_a_refused_cursor_shows_on_the_notion_sync(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listing restarted after a refused cursor is a WARNING line and a span event."""
    google, notion = fakes
    sync = sync_settings(settings, google, notion, notion_page_size=2)
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    for n in range(5):
        notion.add_page(f"page {n}")
    notion.expire_cursors_after = 1
    with caplog.at_level(logging.WARNING):
        result = await run_sync(
            pool, sync, "sync_notion_integration", integration_id=integration_id
        )
    assert result["restarts"] == 1
    [restart] = [
        e for e in events_of(spans, "sync_notion_integration") if e[0] == "listing.restart"
    ]
    assert restart[1] == {
        "sync.provider": "notion",
        "sync.listing": "pages",
        "sync.restart.reason": "cursor_refused",
        "http.response.status_code": 400,
        "jobs.attempt": 1,
        "jobs.wait.seconds": 0.0,
    }
    assert warnings_from(caplog, "jobs.sync") == [
        f"notion integration {integration_id}: pages: HTTP 400 cursor refused, "
        "listing from the top again (restart 1)"
    ]
