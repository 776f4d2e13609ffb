"""A rate limiter shared by every worker process, kept in Redis.

Each limit is a generic cell rate algorithm (GCRA) with reservations: one Lua script reads
Redis' own clock, advances the limit's "theoretical arrival time" by ``1 / rate`` and answers
how long the caller must wait before its request may go. Because the reservation is made
atomically in Redis, any number of workers sharing a key together send at most
``burst + rate * t`` requests in any interval of ``t`` seconds. A wait longer than
``notice_after`` seconds (one by default) leaves a WARNING line and a ``ratelimit.wait`` event
on the current span (:mod:`jobs.notices`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from jobs.metrics import METRICS
from jobs.notices import notice

__all__ = ["RATE_LIMIT_PREFIX", "SharedRateLimiter"]

logger = logging.getLogger(__name__)

#: Prefix of every limiter key: ``jobs:ratelimit:<name>``.
RATE_LIMIT_PREFIX: Final = "jobs:ratelimit:"

# KEYS[1] limit key; ARGV[1] seconds per request; ARGV[2] burst. Returns the wait in microseconds.
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - burst * interval
if wait < 0 then wait = 0 end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return wait
"""


@dataclass(frozen=True)
class SharedRateLimiter:
    """At most ``rate`` requests per second on average, bursts of ``burst``, for one key."""

    redis: Redis
    name: str
    rate: float
    burst: int
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    #: Waits longer than this many seconds are logged and put on the current span.
    notice_after: float = 1.0

    @property
    def key(self) -> str:
        """The Redis key holding this limit's state."""
        return f"{RATE_LIMIT_PREFIX}{self.name}"

    async def reserve(self) -> float:
        """Reserve one request; the seconds to wait before sending it (0 if it may go now)."""
        interval_us = round(1_000_000 / self.rate)
        wait_us = await self.redis.eval(  # type: ignore[misc]
            _RESERVE, 1, self.key, str(interval_us), str(self.burst)
        )
        return int(wait_us) / 1_000_000

    async def acquire(self) -> None:
        """Wait until one more request is allowed, then return."""
        wait = await self.reserve()
        if wait > 0:
            METRICS.waited(wait, "rate_limit")
            if wait > self.notice_after:
                notice(
                    logger,
                    "ratelimit.wait",
                    f"rate limit {self.name}: waiting {wait:.2f} s",
                    {"jobs.ratelimit.name": self.name, "jobs.wait.seconds": wait},
                )
            await self.sleep(wait)
