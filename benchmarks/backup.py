"""Backup throughput (rows/s) and peak memory for users with 10,000 and 200,000 rows.

Each user's rows are e-mails and calendar events (bulk-inserted with ``generate_series``).
Every user is backed up by ``jobs.files.backup_user`` twice: once timed, once under
``tracemalloc`` for the peak of Python allocations; the growth of the process's maximum RSS is
printed too. As a baseline in the same invocation, the same rows are backed up the naive way:
every row fetched into memory and the archive built in memory before it is written.

    python -m benchmarks.backup [--rows 10000 200000] [--database-url URL]

Needs PostgreSQL at 127.0.0.1:5432 (database ``jobs_bench_files`` is recreated) unless
``--database-url`` points elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.db import Base, create_engine, upgrade
from jobs.files import backup_user, owned_tables
from jobs.files.values import encode_value
from jobs.settings import load_settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "jobs_bench_files"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}"


async def recreate_postgres() -> None:
    """Drop and create the benchmark database."""
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {PG_DB}")
    finally:
        await admin.close()


async def add_user(engine: AsyncEngine, rows: int) -> int:
    """A user with ``rows`` rows in all: 60 % e-mails, the rest calendar events."""
    emails = rows * 6 // 10
    events = rows - emails - 2  # the users row and the Google account count too
    async with engine.begin() as connection:
        user_id = (
            await connection.execute(
                text(
                    "INSERT INTO users (email, display_name, timezone, daily_summary_enabled,"
                    " created_at) VALUES (:email, 'Bench', 'UTC', true, CURRENT_TIMESTAMP)"
                    " RETURNING id"
                ),
                {"email": f"bench-{rows}@example.com"},
            )
        ).scalar_one()
        account_id = (
            await connection.execute(
                text(
                    "INSERT INTO google_accounts (user_id, google_email, state, created_at)"
                    " VALUES (:u, 'bench@gmail.com', 'active', CURRENT_TIMESTAMP) RETURNING id"
                ),
                {"u": user_id},
            )
        ).scalar_one()
        await connection.execute(
            text(
                "INSERT INTO outbound_emails (user_id, to_address, subject, body_text, status,"
                " attempts, next_attempt_at, created_at, sent_at)"
                " SELECT :u, 'bench@example.com', 'Weekly report ' || n,"
                " repeat('The quick brown fox jumps over the lazy dog. ', 6), 'sent', 1,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"
                " FROM generate_series(1, :n) AS n"
            ),
            {"u": user_id, "n": emails},
        )
        await connection.execute(
            text(
                "INSERT INTO calendar_events (user_id, account_id, calendar_id, remote_id, status,"
                " summary, description, all_day, starts_at, ends_at, synced_at)"
                " SELECT :u, :a, 'primary', 'event-' || n, 'confirmed', 'Meeting ' || n,"
                " 'Agenda: planning, review and next steps', false,"
                " CURRENT_TIMESTAMP + n * interval '1 hour',"
                " CURRENT_TIMESTAMP + n * interval '1 hour' + interval '30 minutes',"
                " CURRENT_TIMESTAMP FROM generate_series(1, :n) AS n"
            ),
            {"u": user_id, "a": account_id, "n": events},
        )
    return int(user_id)


async def naive_backup(engine: AsyncEngine, user_id: int, directory: Path) -> dict[str, Any]:
    """The baseline: fetch every row, build the whole archive in memory, then write it."""
    lines = []
    async with engine.connect() as connection:
        for owned in owned_tables(Base.metadata):
            result = await connection.execute(owned.select_rows(user_id))
            for row in result.mappings().all():
                document = {"kind": "row", "table": owned.name, "row": dict(row)}
                lines.append(json.dumps(document, default=encode_value))
    data = gzip.compress("\n".join(lines).encode())
    path = directory / f"naive-{user_id}.jsonl.gz"
    path.write_bytes(data)
    return {"rows": len(lines), "path": str(path)}


def max_rss_mib() -> float:
    """The process's maximum resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(run: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[int, float, float, float]:
    """Rows, rows/s (untraced run), tracemalloc peak MiB and max-RSS growth MiB (traced run)."""
    started = time.perf_counter()
    result = await run()
    rate = result["rows"] / (time.perf_counter() - started)
    rss_before = max_rss_mib()
    tracemalloc.start()
    await run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result["rows"], rate, peak / 2**20, max_rss_mib() - rss_before


async def main(row_counts: list[int], database_url: str | None) -> None:
    """Set up the users, run both ways for each, print one line per run."""
    if database_url is None:
        await recreate_postgres()
    settings = load_settings(
        database_url=database_url or PG_URL,
        otel_traces_exporter="none",
        otel_metrics_exporter="none",
    )
    engine = create_engine(settings)
    await upgrade(engine)
    users = {rows: await add_user(engine, rows) for rows in row_counts}
    print(f"database: {engine.dialect.name}; rows per user: {', '.join(map(str, row_counts))}")
    print(
        f"{'method':10} {'rows':>8} {'rows/s':>9} {'tracemalloc peak':>17} {'max RSS growth':>15}"
    )
    peaks: dict[str, list[float]] = {"streamed": [], "naive": []}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        for method in ("streamed", "naive"):  # naive last: it raises the process's max RSS
            for rows, user_id in users.items():

                async def run(user_id: int = user_id, method: str = method) -> dict[str, Any]:
                    if method == "naive":
                        return await naive_backup(engine, user_id, directory)
                    return await backup_user(engine, user_id, directory / "backups", keep=1)

                counted, rate, peak, rss = await measure(run)
                assert counted == rows, (counted, rows)
                peaks[method].append(peak)
                print(f"{method:10} {counted:>8,} {rate:>9,.0f} {peak:>13.1f} MiB {rss:>11.1f} MiB")
    await engine.dispose()
    for method, values in peaks.items():
        print(
            f"{method}: peak at {row_counts[-1]:,} rows / peak at {row_counts[0]:,} rows = "
            f"{values[-1] / values[0]:.2f}x"
        )
    print(
        f"naive / streamed peak at {row_counts[-1]:,} rows = "
        f"{peaks['naive'][-1] / peaks['streamed'][-1]:.1f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--database-url", help="default: the recreated PostgreSQL database")
    arguments = parser.parse_args()
    asyncio.run(main(sorted(arguments.rows), arguments.database_url))
