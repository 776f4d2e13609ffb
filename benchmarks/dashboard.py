"""Latency of the dashboard's queue pages with 1,000, 10,000 and 100,000 queued jobs.

Fills the email queue with send_email jobs as ARQ stores them (a sorted-set entry and a
payload per job, written in pipelined batches), then asks the dashboard app (in-process, over
HTTP through httpx's ASGI transport, credentials and all) for the first, a middle and the last
page of 50, and prints the median latency of each. As a baseline, the same invocation reads
the whole queue the naive way (every id and every payload) at each size.

    python -m benchmarks.dashboard [--sizes 1000,10000,100000] [--redis-url URL]

Needs Redis at 127.0.0.1:6379 (database 8, or ``--redis-url``'s, is flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from arq.constants import job_key_prefix
from arq.jobs import serialize_job
from pydantic import SecretStr
from redis.asyncio import Redis

from jobs.constants import queue_name
from jobs.dashboard import create_dashboard
from jobs.serializer import serialize
from jobs.settings import load_settings

REDIS_URL = "redis://127.0.0.1:6379/8"
PAGE_SIZE = 50
REQUESTS = 15
BATCH = 5000


async def fill(redis: Redis, count: int, start: int) -> None:
    """Add jobs ``start`` … ``count - 1`` to the email queue, due a millisecond apart."""
    queue = queue_name("email")
    now_ms = int(time.time() * 1000) - count - 1000
    for first in range(start, count, BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for number in range(first, min(first + BATCH, count)):
                job_id = f"bench-{number:07d}"
                payload = serialize_job(
                    "send_email",
                    (),
                    {"to": f"user{number}@example.com", "subject": "Hi", "text": "benchmark"},
                    None,
                    now_ms + number,
                    serializer=serialize,
                )
                pipe.set(job_key_prefix + job_id, payload)
                pipe.zadd(queue, {job_id: now_ms + number})
            await pipe.execute()


async def median_ms(client: httpx.AsyncClient, url: str) -> float:
    """Median latency of ``REQUESTS`` GETs of ``url``, in milliseconds."""
    timings = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = await client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        assert response.text.count("data-job-id=") == PAGE_SIZE, url
    return statistics.median(timings)


async def naive_ms(redis: Redis) -> float:
    """Reading every id and every payload of the queue, as a page that loads all would."""
    started = time.perf_counter()
    ids = await redis.zrange(queue_name("email"), 0, -1)
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.get(job_key_prefix + job_id.decode())
        await pipe.execute()
    return (time.perf_counter() - started) * 1000


async def main(sizes: list[int], redis_url: str) -> None:
    """Fill the queue size by size and print the page latencies."""
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            redis_url=redis_url,
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'jobs.db'}",
            dashboard_enabled=True,
            dashboard_username="bench",
            dashboard_password=SecretStr("benchmark-password"),
            otel_traces_exporter="none",
            otel_metrics_exporter="none",
        )
        app = create_dashboard(settings)
        transport = httpx.ASGITransport(app=app)
        filled = 0
        print(f"queue page of {PAGE_SIZE} jobs, median of {REQUESTS} requests (milliseconds):")
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=transport, base_url="http://bench", auth=("bench", "benchmark-password")
            ) as client,
        ):
            for size in sizes:
                await fill(redis, size, filled)
                filled = size
                last = size // PAGE_SIZE - 1
                first_ms = await median_ms(client, "/queues/email")
                middle_ms = await median_ms(client, f"/queues/email?page={last // 2}")
                last_ms = await median_ms(client, f"/queues/email?page={last}")
                naive = await naive_ms(redis)
                print(
                    f"{size:>7,} queued: first page {first_ms:6.1f}, middle {middle_ms:6.1f}, "
                    f"last {last_ms:6.1f}; reading the whole queue instead {naive:8.1f}"
                )
    await redis.flushdb()
    await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--redis-url", default=REDIS_URL)
    arguments = parser.parse_args()
    asyncio.run(main([int(size) for size in arguments.sizes.split(",")], arguments.redis_url))
