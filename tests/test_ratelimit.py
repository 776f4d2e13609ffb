"""The Redis rate limiter: bursts, then the steady rate, shared by every client of a key."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from jobs.ratelimit import SharedRateLimiter
from jobs.telemetry import tracer


async def test_burst_then_rate_shared_between_two_clients(redis_url: str) -> None:
    """Two clients of one key get 3 requests at once together, then one per 1/rate seconds."""
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        limits = [SharedRateLimiter(r, "test:key", rate=10.0, burst=3) for r in (first, second)]
        waits = [await limits[n % 2].reserve() for n in range(6)]
        assert waits[:3] == [0.0, 0.0, 0.0]
        assert [round(w, 1) for w in waits[3:]] == [0.1, 0.2, 0.3]
        other = SharedRateLimiter(first, "test:other", rate=10.0, burst=3)
        assert await other.reserve() == 0.0
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_long_wait_leaves_a_warning_and_an_event_short_ones_do_not(
    redis_url: str, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """Waits over ``notice_after`` are logged and put on the span; the burst's free ones are not."""
    client = Redis.from_url(redis_url)
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    try:
        limit = SharedRateLimiter(
            client, "notion:7", rate=2.0, burst=1, sleep=sleep, notice_after=0.2
        )
        with (
            caplog.at_level(logging.WARNING, logger="jobs.ratelimit"),
            tracer().start_as_current_span("a job"),
        ):
            for _ in range(3):
                await limit.acquire()
    finally:
        await client.aclose()
    assert len(waited) == 2 and all(w > 0.2 for w in waited)
    messages = [r.getMessage() for r in caplog.records if r.name == "jobs.ratelimit"]
    assert messages == [f"rate limit notion:7: waiting {w:.2f} s" for w in waited]
    [job] = spans.get_finished_spans()
    assert [(e.name, dict(e.attributes or {})) for e in job.events] == [
        ("ratelimit.wait", {"jobs.ratelimit.name": "notion:7", "jobs.wait.seconds": w})
        for w in waited
    ]
