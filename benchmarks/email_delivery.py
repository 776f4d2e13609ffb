"""E-mails delivered per second: 1,000 queued, one worker, a local SMTP server.

Runs ``process_email_queue`` in one in-process ARQ worker built exactly like
``arq jobs.email.WorkerSettings``, against a real SMTP server in a separate process (aiosmtpd's
sink), on SQLite and on PostgreSQL. As a baseline, the same 1,000 e-mails are sent in the
same invocation the naive way: one SMTP connection and one UPDATE per message, in sequence.

    python -m benchmarks.email_delivery [--count 1000] [--redis-url URL] [--pg-database NAME]

Needs Redis at 127.0.0.1:6379 (database 8, or ``--redis-url``'s, is flushed) and, for the
PostgreSQL run, PostgreSQL at 127.0.0.1:5432 (database ``jobs_bench``, or ``--pg-database``,
is recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib
import asyncpg
from arq.worker import Worker
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from jobs.client import create_pool
from jobs.db import (
    EmailStatus,
    OutboundEmail,
    create_engine,
    create_session_factory,
    upgrade,
    utcnow,
)
from jobs.email import process_email_queue
from jobs.email.message import build_message
from jobs.settings import Settings, load_settings
from jobs.worker import worker_options
from tests.smtp_server import free_port

REDIS_URL = "redis://127.0.0.1:6379/8"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def start_smtp_sink(port: int) -> subprocess.Popen[bytes]:
    """An aiosmtpd server that accepts and discards every message, in its own process."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import socket

            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("SMTP sink did not start")


async def fill_outbox(settings: Settings, count: int) -> None:
    """Empty the outbox and queue ``count`` e-mails."""
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = create_session_factory(engine)
    async with sessions.begin() as session:
        await session.execute(OutboundEmail.__table__.delete())
        now = utcnow()
        await session.execute(
            OutboundEmail.__table__.insert(),
            [
                {
                    "to_address": f"user{i}@example.com",
                    "subject": f"Message {i}",
                    "body_text": "Hello from the benchmark.\n" * 20,
                    "status": "queued",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for i in range(count)
            ],
        )
    await engine.dispose()


async def sent_count(settings: Settings) -> int:
    """E-mails marked sent."""
    engine = create_engine(settings)
    async with create_session_factory(engine)() as session:
        value = await session.scalar(
            select(func.count()).where(OutboundEmail.status == EmailStatus.SENT)
        )
    await engine.dispose()
    return int(value or 0)


async def run_worker(settings: Settings, count: int) -> float:
    """Seconds for one worker to deliver the whole outbox."""
    await fill_outbox(settings, count)
    redis = Redis.from_url(settings.redis_url)
    await redis.flushdb()
    await redis.aclose()
    options = worker_options("email", settings, [process_email_queue], [])
    options.pop("redis_settings")
    pool = await create_pool(settings)
    worker = Worker(
        **options,
        redis_pool=await create_pool(settings),
        burst=True,
        handle_signals=False,
        ctx={"settings": settings},
    )
    started = time.perf_counter()
    await pool.enqueue_job("process_email_queue")
    try:
        await worker.main()
    finally:
        await worker.close()
        await pool.aclose()
    elapsed = time.perf_counter() - started
    assert await sent_count(settings) == count, "not every e-mail was sent"
    return elapsed


async def run_naive(settings: Settings, count: int) -> float:
    """Seconds to send the outbox one connection and one UPDATE per message, in sequence."""
    await fill_outbox(settings, count)
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    started = time.perf_counter()
    async with sessions() as session:
        emails = list(await session.scalars(select(OutboundEmail)))
    for email in emails:
        await aiosmtplib.send(
            build_message(email, settings.smtp_from),
            sender=settings.smtp_from,
            recipients=[email.to_address],
            hostname=settings.smtp_host,
            port=settings.smtp_port,
        )
        async with sessions.begin() as session:
            await session.execute(
                update(OutboundEmail)
                .where(OutboundEmail.id == email.id)
                .values(status=EmailStatus.SENT, attempts=1)
            )
    elapsed = time.perf_counter() - started
    await engine.dispose()
    assert await sent_count(settings) == count
    return elapsed


async def postgres_available(database: str) -> bool:
    """Recreate the benchmark database; False if PostgreSQL is not reachable."""
    if not database.isidentifier():
        raise ValueError(f"not a plain database name: {database!r}")
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {database}")
    await admin.close()
    return True


async def main(count: int, redis_url: str = REDIS_URL, pg_database: str = "jobs_bench") -> None:
    """Run every case and print a table."""
    port = free_port()
    sink = start_smtp_sink(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            backends = {"sqlite": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"}
            if await postgres_available(pg_database):
                backends["postgresql"] = f"{PG_SERVER}/{pg_database}"
            print(f"{count} e-mails, one worker, SMTP sink on 127.0.0.1:{port}")
            print(f"{'database':12} {'runtime e-mails/s':>18} {'naive e-mails/s':>16} {'ratio':>7}")
            for name, url in backends.items():
                settings = load_settings(
                    database_url=url,
                    redis_url=redis_url,
                    smtp_host="127.0.0.1",
                    smtp_port=port,
                    worker_poll_delay=0.05,
                    otel_sdk_disabled=True,
                    log_level="WARNING",
                    data_dir=Path(tmp),
                )
                runtime = await run_worker(settings, count)
                naive = await run_naive(settings, count)
                print(
                    f"{name:12} {count / runtime:18.0f} {count / naive:16.0f} "
                    f"{naive / runtime:6.1f}x"
                )
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--redis-url", default=REDIS_URL, help="its database is flushed")
    parser.add_argument("--pg-database", default="jobs_bench", help="it is recreated")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.count, arguments.redis_url, arguments.pg_database))
