"""A database outage against a real worker process: the worker waits for it and loses nothing.

The worker reaches the shared PostgreSQL through a TCP proxy the test controls
(:mod:`tests.tcp_proxy`); cutting the proxy resets every connection and refuses new ones, as a
database that went down does. The shared server itself is never touched.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import msgpack
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db.models import EmailStatus, FailedJob, OutboundEmail
from jobs.settings import Settings
from tests.processes import WorkerProcess, worker_environment
from tests.smtp_server import SmtpServer
from tests.tcp_proxy import TcpProxy

EMAILS = 36
QUEUE = "jobs:queue:email"


def _through(proxy: TcpProxy, database_url: str) -> str:
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


async def _plant_invalid_job(redis: Redis, job_id: str) -> None:
    """A send_email payload with arguments that can never validate: it fails at once, for good."""
    payload = {"t": None, "f": "send_email", "a": [], "k": {"to": 5}, "et": int(time.time() * 1000)}
    await redis.set(f"arq:job:{job_id}", msgpack.packb(payload, use_bin_type=True))
    await redis.zadd(QUEUE, {job_id: int(time.time() * 1000)})


async def _failed(sessions: async_sessionmaker[AsyncSession]) -> list[FailedJob]:
    async with sessions() as session:
        return list(await session.scalars(select(FailedJob)))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgres_outage_loses_no_email_and_records_failures_afterwards(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """36 e-mails and a 20 s PostgreSQL outage: each is sent once; a failure is recorded after."""
    outage = 20.0
    smtp_server.handler.data_delay = 0.05
    redis = Redis.from_url(settings.redis_url)
    with TcpProxy("127.0.0.1", make_url(settings.resolved_database_url).port or 5432) as proxy:
        env = worker_environment(
            settings,
            DATABASE_URL=_through(proxy, settings.resolved_database_url),
            LOG_FORMAT="text",
            DATABASE_OUTAGE_BACKOFF_MAX_SECONDS="3",
            DEAD_LETTER_DRAIN_INTERVAL="1",
        )
        worker = WorkerProcess("email", env, tmp_path).start()
        try:
            await worker.wait_ready()
            jobs = []
            for number in range(EMAILS):
                job = await pool.enqueue_job(
                    "send_email", to=f"user{number}@example.com", subject=f"n{number}", text="hi"
                )
                assert job is not None
                jobs.append(job)
            while not smtp_server.messages:  # noqa: ASYNC110 - another thread appends
                await asyncio.sleep(0.01)
            proxy.cut()
            await _plant_invalid_job(redis, "invalid-during-outage")
            await asyncio.sleep(outage)
            assert worker.exit_code is None, f"the worker died:\n{worker.output[-3000:]}"
            proxy.restore()
            restored = time.monotonic()
            recovered = None
            deadline = restored + 120
            while time.monotonic() < deadline:
                assert worker.exit_code is None, f"the worker died:\n{worker.output[-3000:]}"
                done = len({m["To"] for m in smtp_server.messages}) == EMAILS
                if done and recovered is None:
                    recovered = time.monotonic() - restored
                records = await _failed(sessions)
                if done and any(r.job_id == "invalid-during-outage" for r in records):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # a duplicate would arrive now
            sent = Counter(str(m["To"]) for m in smtp_server.messages)
            records = await _failed(sessions)
            lost = EMAILS - len(sent)
            duplicates = sum(count - 1 for count in sent.values())
            print(  # the figures of docs/reliability.md
                f"\nPostgreSQL outage {outage:.0f}s: e-mails {EMAILS}, lost {lost}, "
                f"duplicates {duplicates}, recovered in "
                f"{'-' if recovered is None else f'{recovered:.1f}s'}, failed records "
                f"{sorted((r.job_name, r.error_type) for r in records)}"
            )
            assert lost == 0, (sorted(sent), worker.output[-4000:])
            assert duplicates == 0, sent
            [invalid] = [r for r in records if r.job_id == "invalid-during-outage"]
            assert invalid.error_type == "JobArgumentsError"
            assert [r for r in records if r is not invalid] == []
            async with sessions() as session:
                statuses = Counter(e.status for e in await session.scalars(select(OutboundEmail)))
            assert statuses == {EmailStatus.SENT: EMAILS}
            assert await redis.llen("jobs:dead-letters") == 0
            output = worker.output
            assert output.count("database unreachable") == 1, output[-4000:]
            assert output.count("database reachable again") == 1, output[-4000:]
        finally:
            code = worker.stop()
            await redis.aclose()
        assert code == 0, worker.output[-3000:]
