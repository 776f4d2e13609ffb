"""The Redis rate limiter: bursts, then the steady rate, shared by every client of a key."""

from __future__ import annotations

from redis.asyncio import Redis

from jobs.ratelimit import SharedRateLimiter


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
