"""ARQ's queue operations as Lua scripts: one round trip each, and a wake-up signal with them.

ARQ enqueues with WATCH, EXISTS and MULTI…EXEC (three round trips), claims each job with WATCH,
EXISTS, ZSCORE and MULTI…EXEC (four, after a ZRANGEBYSCORE), and finishes it in a MULTI…EXEC.
The scripts below do the same work on the same keys atomically, in one round trip each:

- :data:`ENQUEUE` stores the job and adds it to the queue unless a job or result with its id
  exists, and pushes a signal to the queue's wake-up list (kept short, see :data:`WAKE_CAP`);
- :data:`CLAIM` takes up to N due jobs that no worker runs (setting their in-progress keys;
  one MGET tells which run), says whether due jobs were left for lack of slots, and when none
  were, clears the wake-up list (those signals would only wake workers for nothing) and returns
  the score of the next deferred job, so a worker knows when to look again;
- :data:`FINISH` is ARQ's ``finish_job``, plus a signal when the job stays queued for a retry,
  and — while due jobs wait — the claim of the next one for the slot it frees;
- :data:`RENEW` extends the leases (in-progress keys) a worker holds on the jobs it runs.

A claim writes the claiming worker's token into the in-progress key (ARQ only asks whether the
key exists), and the key lives for a short lease that the worker renews while the job runs
(:mod:`jobs.lease`), so a dead worker's jobs are taken again soon after its last renewal.

Keys and values are ARQ's (``arq.constants``), so plain ARQ clients and workers still read
and write the same queue. Redis Cluster is not supported (nor is it by ARQ).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

__all__ = ["CLAIM", "ENQUEUE", "FINISH", "RENEW", "WAKE_CAP", "LuaScript"]

#: Signals kept in a wake-up list: enough to wake every idle worker of a family at once. The
#: list is trimmed back to this when it reaches twice as many (one LTRIM per WAKE_CAP pushes).
WAKE_CAP = 64


@dataclass
class LuaScript:
    """A Lua script run by its SHA1, loaded into Redis the first time Redis lacks it."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(
        self, client: Redis, keys: Sequence[str | bytes], args: Sequence[Any]
    ) -> Any:
        """Run the script on ``client`` with ``keys`` and ``args``; its reply."""
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        except NoScriptError:
            await client.execute_command("SCRIPT LOAD", self.source)  # type: ignore[no-untyped-call]
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]


#: KEYS: job, result, queue, wake-up list. ARGV: job id, payload, expiry (ms), score, cap.
#: Returns 1 when enqueued, 0 when a job or result with that id exists.
ENQUEUE = LuaScript(
    """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if redis.call('LPUSH', KEYS[4], '1') > 2 * tonumber(ARGV[5]) then
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[5]) - 1)
end
return 1
"""
)

#: Claims up to ``free`` due jobs of ``queue``; see CLAIM for the reply.
_CLAIM_FUNCTION = """
local function claim(queue, wake, now, free, scan, ttl, prefix, clear, token)
  local due = redis.call('ZRANGEBYSCORE', queue, '-inf', now, 'WITHSCORES',
                         'LIMIT', 0, tonumber(scan))
  free = tonumber(free)
  local claimed = {}
  local left = 0
  if #due > 0 then
    local keys = {}
    for i = 1, #due, 2 do keys[#keys + 1] = prefix .. due[i] end
    local running = redis.call('MGET', unpack(keys))
    for i = 1, #keys do
      if not running[i] then
        if #claimed >= 2 * free then
          left = 1
          break
        end
        redis.call('PSETEX', keys[i], ttl, token)
        claimed[#claimed + 1] = due[2 * i - 1]
        claimed[#claimed + 1] = due[2 * i]
      end
    end
  end
  if left == 1 then return {claimed, left} end
  if clear == '1' then redis.call('DEL', wake) end
  local later = redis.call('ZRANGEBYSCORE', queue, '(' .. now, '+inf', 'WITHSCORES',
                           'LIMIT', 0, 1)
  return {claimed, left, later[2]}
end
"""

#: KEYS: queue, wake-up list. ARGV: now (ms), free slots, how many due jobs to look at,
#: in-progress expiry (ms), in-progress key prefix, clear the wake-up list (1/0), the
#: worker's token (the in-progress keys' value).
#: Returns {claimed ids and scores, flat; 1 if due jobs were left; when none were left, the
#: next deferred job's score or nil}.
CLAIM = LuaScript(
    _CLAIM_FUNCTION
    + """
return claim(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
"""
)

#: KEYS: in-progress, job, retry, result, queue, abort set, wake-up list.
#: ARGV: job id, finished (1/0), result ('' for none), result expiry (ms, 0 for never),
#: score increment (0 for none), keep the in-progress key for (ms, -1 to delete it), cap,
#: then claim the next job (1/0), and CLAIM's ARGV 1, 3, 4, 5 and 7.
#: Returns 1, or CLAIM's reply when it claims the next job.
FINISH = LuaScript(
    _CLAIM_FUNCTION
    + """
local gone = {}
if tonumber(ARGV[6]) < 0 then
  gone[1] = KEYS[1]
else
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
if ARGV[2] == '1' then
  if ARGV[3] ~= '' then
    if ARGV[4] == '0' then
      redis.call('SET', KEYS[4], ARGV[3])
    else
      redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
    end
  end
  gone[#gone + 1] = KEYS[3]
  gone[#gone + 1] = KEYS[2]
  redis.call('ZREM', KEYS[6], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
else
  if ARGV[5] ~= '0' then redis.call('ZINCRBY', KEYS[5], ARGV[5], ARGV[1]) end
  if redis.call('LPUSH', KEYS[7], '1') > 2 * tonumber(ARGV[7]) then
    redis.call('LTRIM', KEYS[7], 0, tonumber(ARGV[7]) - 1)
  end
end
if #gone > 0 then redis.call('DEL', unpack(gone)) end
if ARGV[8] == '1' then
  return claim(KEYS[5], KEYS[7], ARGV[9], 1, ARGV[10], ARGV[11], ARGV[12], '1', ARGV[13])
end
return 1
"""
)

#: KEYS: for each job, its in-progress key then its job key. ARGV: lease (ms), the worker's
#: token, take a lease back (1/0). Each in-progress key holding the token lives for the lease
#: again; with "take back", a key that expired is written again while its job key exists (the
#: job is unfinished and no other worker holds it). Returns the (1-based) numbers of the jobs
#: whose lease is lost: another worker holds it, or it expired.
RENEW = LuaScript(
    """
local lost = {}
for i = 1, #KEYS, 2 do
  local holder = redis.call('GET', KEYS[i])
  if holder == ARGV[2] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  elseif not holder and ARGV[3] == '1' and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[1])
  else
    lost[#lost + 1] = (i + 1) / 2
  end
end
return lost
"""
)
