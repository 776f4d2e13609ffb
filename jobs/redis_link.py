"""Whether a worker reaches Redis, how it rides out an outage, and what producers get instead.

A worker that loses Redis keeps running: its running jobs go on, their results wait for Redis
(:meth:`RedisLink.wait_up`), and its loop pings Redis with a growing delay (0.1 s doubling up
to 2 s) until it answers. It logs one line when Redis becomes unreachable and one when it is
reachable again, with how long it was away; the heartbeat record carries the same facts
(:mod:`jobs.monitor`), so ``python -m jobs health --self FAMILY`` can show them. Producers
retry for ``REDIS_RETRY_SECONDS``, then get :class:`RedisUnavailableError` (see
:meth:`jobs.client.JobsPool.reaching_redis`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.availability import Availability
from jobs.errors import JobsError

__all__ = ["REDIS_DOWN", "RedisLink", "RedisUnavailableError"]

logger = logging.getLogger("jobs.worker")

#: The errors of a Redis that cannot be reached (refused, reset, timed out, still loading).
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
#: The first delay between pings while Redis is away, and the longest.
FIRST_DELAY = 0.1
MAX_DELAY = 2.0
#: Seconds one ping may take.
PING_TIMEOUT = 2.0


def describe(error: BaseException | None) -> str:
    """``Type: message`` of an error, for a log line."""
    return "no answer" if error is None else f"{type(error).__name__}: {error}"


class RedisUnavailableError(JobsError, RedisConnectionError):
    """Redis could not be reached, retrying for ``REDIS_RETRY_SECONDS``.

    What was asked was not done (unless Redis took it just as the connection broke: enqueue
    again under the same ``_job_id`` to be sure). ``reason`` says what the last try met. An
    ``except redis.exceptions.ConnectionError`` catches it too.
    """

    def __init__(self, where: str, seconds: float, last_error: BaseException) -> None:
        self.reason = (
            f"{type(last_error).__name__}: {last_error}; "
            f"tried for {seconds:g}s, REDIS_RETRY_SECONDS"
        )
        super().__init__(f"Redis at {where} is unreachable ({self.reason})")


class RedisLink:
    """One worker's view of Redis: up or down since when, and its outages so far."""

    def __init__(self) -> None:
        self.availability = Availability(time.time)  # wall clock: health shows when it ended
        self.outages = 0
        self.last_outage_s: float | None = None
        self.last_outage_ended: float | None = None
        self._up = asyncio.Event()
        self._up.set()

    @property
    def up(self) -> bool:
        """Redis answered last time it was asked."""
        return not self.availability.is_down

    @property
    def down_since(self) -> float | None:
        """When the current outage began (a time.time()), None while Redis answers."""
        return self.availability.down_since

    def went_down(self, error: BaseException | None) -> None:
        """Note that Redis failed; logs once per outage."""
        if self.availability.failed():
            self._up.clear()
            logger.warning(
                "Redis unreachable (%s): running jobs go on, their results wait; "
                "retrying with backoff",
                describe(error),
            )

    def came_back(self) -> None:
        """Note that Redis answers again; logs how long it was away."""
        seconds = self.availability.answered()
        if seconds is None:
            return
        self.last_outage_s = round(seconds, 3)
        self.last_outage_ended = time.time()
        self.outages += 1
        self._up.set()
        logger.warning("Redis reachable again after %.1f s", self.last_outage_s)

    async def wait_up(self) -> None:
        """Return when Redis is reachable (at once when it is)."""
        await self._up.wait()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``; while Redis is away, return as soon as it is back."""
        if self.up:
            await asyncio.sleep(seconds)
            return
        try:
            async with asyncio.timeout(seconds):
                await self._up.wait()
        except TimeoutError:
            pass

    async def ride_out(
        self,
        redis: Redis,
        error: BaseException | None,
        on_return: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Wait until ``redis`` answers a ping, with backoff; then ``on_return``, then up.

        ``on_return`` (e.g. taking back leases) runs before anyone waiting in
        :meth:`wait_up` resumes; if Redis fails it again, the wait goes on.
        """
        self.went_down(error)
        delay = FIRST_DELAY
        while True:
            await asyncio.sleep(delay)
            delay = min(2 * delay, MAX_DELAY)
            try:
                async with asyncio.timeout(PING_TIMEOUT):
                    await redis.ping()
                    if on_return is not None:
                        await on_return()
            except REDIS_DOWN:
                continue
            break
        self.came_back()
