"""The short lease a worker holds on each job it runs, renewed while the job runs.

ARQ marks a running job with an in-progress key that lives for the longest job timeout plus
10 s: a worker killed mid-job leaves its jobs stuck that long (about 5 minutes for e-mail).
Here the key lives for ``WORKER_LEASE_SECONDS`` (30 s by default) and holds the worker's
token; every third of the lease, the worker renews the keys of all the jobs it still runs in
one round trip (:data:`jobs.queue_scripts.RENEW`). A worker that dies stops renewing, its keys
expire, and another worker of the family claims the jobs on ARQ's usual path — as a new try,
so ARQ's try counter and ``max_tries`` see it. A job that runs longer than the lease keeps it
for as long as its worker lives and reaches Redis.

A worker that could not reach Redis for longer than a lease finds its keys expired when Redis
is back: its first renewal then takes them back, unless another worker claimed the job in the
meantime (that job then runs twice; a warning names it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable

from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.asyncio import Redis

from jobs.queue_scripts import RENEW
from jobs.redis_link import REDIS_DOWN

__all__ = ["DEFAULT_LEASE_SECONDS", "JobLeases"]

logger = logging.getLogger("jobs.worker")

#: The lease of a worker whose settings were not read (WORKER_LEASE_SECONDS's default).
DEFAULT_LEASE_SECONDS = 30.0


class JobLeases:
    """The leases of one worker: its token, their length, and the jobs they cover."""

    def __init__(self, seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.seconds = seconds
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.held: set[str] = set()

    @property
    def milliseconds(self) -> int:
        """The lease in milliseconds, as the scripts take it."""
        return max(1, int(self.seconds * 1000))

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: a third of the lease."""
        return self.seconds / 3

    async def renew(self, redis: Redis, *, take_back: bool = False) -> list[str]:
        """Renew the lease of every held job in one round trip; the ids of leases lost.

        ``take_back`` writes again the keys that expired while their job is unfinished.
        """
        job_ids = sorted(self.held)
        if not job_ids:
            return []
        keys = [key for job_id in job_ids for key in _keys(job_id)]
        lost = await RENEW(redis, keys, [self.milliseconds, self.token, 1 if take_back else 0])
        gone = [job_ids[int(number) - 1] for number in lost]
        for job_id in gone:
            if job_id in self.held:
                logger.warning(
                    "job %s: its lease expired or another worker holds it; it may run twice",
                    job_id,
                    extra={"job": {"job_id": job_id}},
                )
        return gone

    async def keep(self, redis: Redis, running: Callable[[], Iterable[str]]) -> None:
        """Renew the leases every third of the lease until cancelled.

        ``running`` names the jobs still running (others are let go). A renewal that fails
        because Redis is away is not repeated: the next one tries again.
        """
        while True:
            await asyncio.sleep(self.renew_every)
            self.held.intersection_update(running())
            try:
                async with asyncio.timeout(self.renew_every):
                    await self.renew(redis)
            except REDIS_DOWN:
                pass


def _keys(job_id: str) -> tuple[str, str]:
    return in_progress_key_prefix + job_id, job_key_prefix + job_id
