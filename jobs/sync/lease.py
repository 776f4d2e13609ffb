"""At most one sync of an account at a time, across every worker: a lease in Redis.

A run takes the lease ``jobs:sync:lease:<account>`` (``SET NX`` with an expiry of
``SYNC_LEASE_SECONDS``) and renews it in the background while it lives, so a worker that dies
loses it within that time and a later request takes over. A request that finds the lease held
does not run: it sets the flag ``jobs:sync:rerun:<account>`` and is answered "coalesced"; the
holder, when it finishes, finds the flag and runs once more. Taking the lease clears the flag
(a run that starts now covers every request made before). Each step is one Lua script, so a
request is either seen by the holder's release or takes the lease itself — never lost between.

The lease is not what keeps data safe if it is ever lost (a paused process, a Redis failover):
the sync generation fences stale runs out in the database (:mod:`jobs.sync.generation`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["LEASE_PREFIX", "RERUN_PREFIX", "SyncLease", "run_exclusively"]

logger = logging.getLogger(__name__)

#: Prefix of the lease keys: ``jobs:sync:lease:<account>``, holding the holder's id.
LEASE_PREFIX: Final = "jobs:sync:lease:"
#: Prefix of the "run again after" flags: ``jobs:sync:rerun:<account>``.
RERUN_PREFIX: Final = "jobs:sync:rerun:"

# KEYS: lease, rerun flag; ARGV: holder, lease ms. 1 = taken (flag cleared), 0 = flag set.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 0
"""
# KEYS: lease, rerun flag; ARGV: holder, lease ms, flag ms. 1 = still ours (or free again and
# retaken; a pending flag is kept alive with it), 0 = another run holds it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"""
# KEYS: lease, rerun flag; ARGV: holder, lease ms. 1 = a rerun was asked for (lease kept,
# flag cleared), 0 = released (or no longer ours).
_FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: How long a "run again after" flag outlives the last renewal of the lease, in lease lengths.
RERUN_FLAG_LEASES = 4


@dataclass(frozen=True)
class SyncLease:
    """The lease of one account's sync, as seen by one holder (a job try)."""

    redis: Redis
    account: str
    holder: str
    seconds: float

    @property
    def key(self) -> str:
        """The Redis key of the lease."""
        return f"{LEASE_PREFIX}{self.account}"

    @property
    def rerun_key(self) -> str:
        """The Redis key of the "run again after" flag."""
        return f"{RERUN_PREFIX}{self.account}"

    @property
    def _ms(self) -> str:
        return str(max(1, round(self.seconds * 1000)))

    @property
    def _flag_ms(self) -> str:
        return str(int(self._ms) * RERUN_FLAG_LEASES)

    async def _eval(self, script: str, keys: list[str], *args: str) -> int:
        return int(await self.redis.eval(script, len(keys), *keys, *args))  # type: ignore[misc]

    async def acquire(self) -> bool:
        """Take the lease; False (and the rerun flag set) if another run holds it."""
        keys = [self.key, self.rerun_key]
        return await self._eval(_ACQUIRE, keys, self.holder, self._ms, self._flag_ms) == 1

    async def renew(self) -> bool:
        """Extend the lease; False if another run has taken it meanwhile."""
        keys = [self.key, self.rerun_key]
        return await self._eval(_RENEW, keys, self.holder, self._ms, self._flag_ms) == 1

    async def finish(self) -> bool:
        """Release the lease, unless a rerun was asked for: then keep it and return True."""
        return await self._eval(_FINISH, [self.key, self.rerun_key], self.holder, self._ms) == 1

    async def release(self) -> None:
        """Release the lease if it is still ours (after a failure; the flag stays)."""
        await self._eval(_RELEASE, [self.key], self.holder)

    async def current_holder(self) -> str | None:
        """Who holds the lease now, as far as Redis says (for messages only)."""
        value = await self.redis.get(self.key)
        if value is None:
            return None
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return text[:200]

    async def keep_renewed(self) -> None:
        """Renew the lease every third of its length until cancelled."""
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                if not await self.renew():
                    logger.warning(
                        "sync lease of %s was taken over by another run; "
                        "this run is fenced out by its generation",
                        self.account,
                    )
                    return
            except (RedisError, OSError) as error:
                logger.warning("renewing the sync lease of %s failed: %s", self.account, error)


async def run_exclusively(
    lease: SyncLease, run: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run ``run`` under the lease, again while reruns are asked for; else answer "coalesced".

    The result is the last run's, with ``runs`` (how many times it ran in this job).
    """
    if not await lease.acquire():
        return {"status": "coalesced", "running": await lease.current_holder()}
    renewing = asyncio.create_task(lease.keep_renewed())
    runs = 0
    try:
        while True:
            result = await run()
            runs += 1
            if not await lease.finish():
                return {**result, "runs": runs}
            logger.info("sync of %s was requested again while it ran: running again", lease.account)
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
        try:
            await lease.release()  # a no-op unless the run failed while holding it
        except (RedisError, OSError) as error:  # it expires by itself
            logger.warning("releasing the sync lease of %s failed: %s", lease.account, error)
