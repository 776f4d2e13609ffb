"""Full sync of 10,000 events and 10,000 pages from the fakes into PostgreSQL, and upsert rows/s.

Runs ``sync_calendar_account`` and ``sync_notion_integration`` in an in-process worker built
like ``arq jobs.sync.WorkerSettings`` against the local fake Google Calendar and Notion servers
(the shared Notion limit is raised to 1,000 requests/s here: at Notion's real 3/s, 100 search
requests alone take 33 s). Then it writes the same event rows once as bulk upserts (one
statement per 250-row page, as the sync does) and once one row per statement, in the same
invocation, and prints rows/s of both.

    python -m benchmarks.sync [--count 10000]

Needs Redis at 127.0.0.1:6379 (database 10 is flushed) and PostgreSQL at 127.0.0.1:5432
(database ``jobs_bench_sync`` is recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from typing import Any

import asyncpg
from pydantic import SecretStr
from redis.asyncio import Redis

from jobs.client import create_pool
from jobs.db import CalendarEvent, create_engine, create_session_factory, upgrade
from jobs.db.upsert import upsert_rows
from jobs.settings import load_settings
from jobs.sync.store import EVENT_KEY, event_row
from tests.conftest import make_worker, run_burst
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import KEY, SYNC_JOBS, connect_google, connect_notion

REDIS_URL = "redis://127.0.0.1:6379/10"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/jobs_bench_sync"


async def recreate_database() -> None:
    """Drop and create the benchmark database."""
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute("DROP DATABASE IF EXISTS jobs_bench_sync WITH (FORCE)")
        await admin.execute("CREATE DATABASE jobs_bench_sync")
    finally:
        await admin.close()


async def run_job(settings: Any, name: str, **kwargs: Any) -> tuple[float, Any]:
    """Seconds one job took in a fresh worker, and its result."""
    pool = await create_pool(settings)
    try:
        job = await pool.enqueue_job(name, **kwargs)
        assert job is not None
        started = time.perf_counter()
        await run_burst(await make_worker(settings, SYNC_JOBS, family="sync"))
        elapsed = time.perf_counter() - started
        return elapsed, await job.result(timeout=5)
    finally:
        await pool.aclose()


async def main(count: int) -> None:
    """Run the benchmark and print its figures."""
    await recreate_database()
    await Redis.from_url(REDIS_URL).flushdb()
    async with FakeGoogleCalendar() as google, FakeNotion() as notion:
        settings = load_settings(
            database_url=PG_URL,
            redis_url=REDIS_URL,
            token_encryption_key=SecretStr(KEY),
            google_api_base_url=google.base_url,
            google_token_url=google.token_url,
            google_client_id=google.client_id,
            google_client_secret=SecretStr(google.client_secret),
            google_page_size=250,
            google_rate_per_second=1000.0,
            notion_api_base_url=notion.base_url,
            notion_rate_per_second=1000.0,
            notion_rate_burst=100,
            worker_poll_delay=0.02,
            log_level="WARNING",
            otel_traces_exporter="none",
            otel_metrics_exporter="none",
        )
        engine = create_engine(settings)
        await upgrade(engine)
        sessions = create_session_factory(engine)
        base = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
        for n in range(count):
            start = base + dt.timedelta(hours=n)
            google.put_event(
                "primary",
                f"ev{n:06d}",
                summary=f"event {n}",
                description="benchmark event",
                start={"dateTime": start.isoformat()},
                end={"dateTime": (start + dt.timedelta(hours=1)).isoformat()},
            )
        for n in range(count):
            notion.add_page(f"page {n}")
        account_id, _ = await connect_google(sessions, settings, google, "bench@example.com")
        integration_id = await connect_notion(sessions, settings, notion, "bench2@example.com")

        seconds, result = await run_job(settings, "sync_calendar_account", account_id=account_id)
        print(
            f"calendar full sync: {result['upserted']:,} events, {result['pages']} pages "
            f"in {seconds:.2f} s ({result['upserted'] / seconds:,.0f} events/s)"
        )
        seconds, result = await run_job(
            settings, "sync_notion_integration", integration_id=integration_id
        )
        print(
            f"notion full sync:   {result['upserted']:,} pages, {result['requests']} requests "
            f"in {seconds:.2f} s ({result['upserted'] / seconds:,.0f} pages/s)"
        )

        stamp = dt.datetime.now(dt.UTC)
        rows = [
            event_row(
                user_id=1,
                account_id=account_id,
                calendar_id=calendar,
                item=item,
                synced_at=stamp,
                generation=1,
            )
            for calendar in ("bulk", "single")
            for item in google.live_events("primary").values()
        ]
        bulk, single = rows[:count], rows[count:]
        started = time.perf_counter()
        for page in range(0, count, 250):
            async with sessions.begin() as session:
                chunk = bulk[page : page + 250]
                await session.execute(
                    upsert_rows("postgresql", CalendarEvent, chunk, conflict_columns=EVENT_KEY),
                    chunk,
                )
        bulk_rate = count / (time.perf_counter() - started)
        started = time.perf_counter()
        for page in range(0, count, 250):
            async with sessions.begin() as session:
                for row in single[page : page + 250]:
                    await session.execute(
                        upsert_rows("postgresql", CalendarEvent, [row], conflict_columns=EVENT_KEY),
                        row,
                    )
        single_rate = count / (time.perf_counter() - started)
        print(
            f"upsert of {count:,} event rows (pages of 250, one transaction per page): "
            f"bulk {bulk_rate:,.0f} rows/s, one row per statement {single_rate:,.0f} rows/s "
            f"-> {bulk_rate / single_rate:.1f}x"
        )
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().count))
