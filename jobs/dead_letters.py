"""Records the database could not take, kept in Redis until it can.

When a failed-job record (a job's failure, a refused payload) or the outcome of an e-mail
delivery cannot be written because the database is unreachable, it is pushed to the Redis list
``jobs:dead-letters`` (newest first, at most ``DEAD_LETTER_MAX_ENTRIES``; the oldest are
dropped with an error line beyond that). Every worker drains the list at start-up and every
``DEAD_LETTER_DRAIN_INTERVAL`` seconds.

Draining is safe with several workers at once: a Lua script moves one entry from the list into
the claims hash ``jobs:dead-letters:claims`` atomically (so no two workers take the same
entry), the entry is written in one transaction, then its claim is deleted. An entry whose
worker died between the two is given back to the list once its claim is older than
:data:`CLAIM_SECONDS`; each kind's writer skips a record it finds written already, so a
given-back entry is never stored twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.outage import DATABASE, is_database_unreachable

__all__ = [
    "CLAIMS_KEY",
    "DEAD_LETTERS_KEY",
    "DeadLetter",
    "DeadLetters",
    "Writer",
    "register_writer",
]

logger = logging.getLogger("jobs.dead_letters")

DEAD_LETTERS_KEY: Final = "jobs:dead-letters"
CLAIMS_KEY: Final = "jobs:dead-letters:claims"
#: A claim older than this (its worker died mid-write) is given back to the list.
CLAIM_SECONDS: Final = 300.0

_KEEP = """
redis.call('LPUSH', KEYS[1], ARGV[1])
local length = redis.call('LLEN', KEYS[1])
local limit = tonumber(ARGV[2])
if length > limit then
  redis.call('LTRIM', KEYS[1], 0, limit - 1)
  return length - limit
end
return 0
"""
_CLAIM = """
local entry = redis.call('RPOP', KEYS[1])
if entry then redis.call('HSET', KEYS[2], entry, ARGV[1]) end
return entry
"""
_GIVE_BACK = """
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[1], ARGV[1]) end
return 0
"""
_EXPIRED = """
local claims = redis.call('HGETALL', KEYS[2])
local given = 0
for i = 1, #claims, 2 do
  if tonumber(claims[i + 1]) < tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[2], claims[i])
    redis.call('RPUSH', KEYS[1], claims[i])
    given = given + 1
  end
end
return given
"""


@dataclass(frozen=True)
class DeadLetter:
    """One kept record: its kind (which writer stores it), data, id and when it was kept."""

    kind: str
    data: dict[str, Any]
    id: str
    kept_at: dt.datetime


#: Stores one dead letter inside the given transaction; skips it if it is stored already.
Writer = Callable[[AsyncSession, DeadLetter], Awaitable[None]]
_WRITERS: dict[str, Writer] = {}


def register_writer(kind: str, writer: Writer) -> None:
    """Name the function that writes dead letters of ``kind`` to the database."""
    _WRITERS[kind] = writer


def _encode(kind: str, data: dict[str, Any]) -> str:
    kept_at = dt.datetime.now(dt.UTC).isoformat()
    return json.dumps({"kind": kind, "id": uuid.uuid4().hex, "at": kept_at, "data": data})


def _decode(raw: bytes | str) -> DeadLetter:
    entry = json.loads(raw)
    return DeadLetter(
        entry["kind"], entry["data"], entry["id"], dt.datetime.fromisoformat(entry["at"])
    )


@dataclass(frozen=True)
class DeadLetters:
    """The dead-letter list on ``redis``, holding at most ``max_entries``."""

    redis: Any  # redis.asyncio.Redis (its stubs type eval arguments as str only)
    max_entries: int

    async def keep(self, kind: str, data: dict[str, Any]) -> bool:
        """Push one record (JSON-ready ``data``); False if Redis could not take it either."""
        try:
            dropped = int(
                await self.redis.eval(
                    _KEEP, 1, DEAD_LETTERS_KEY, _encode(kind, data), self.max_entries
                )
            )
        except Exception as exc:
            logger.error("could not keep a %s record in Redis either: %s", kind, type(exc).__name__)
            return False
        if dropped:
            logger.error(
                "dead-letter list full (DEAD_LETTER_MAX_ENTRIES=%d): dropped %d oldest record(s)",
                self.max_entries,
                dropped,
            )
        return True

    async def waiting(self) -> int:
        """How many records wait in Redis (in the list or being written)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(DEAD_LETTERS_KEY)
            pipe.hlen(CLAIMS_KEY)
            listed, claimed = await pipe.execute()
        return int(listed) + int(claimed)

    async def _claim(self) -> bytes | None:
        deadline = time.time() + CLAIM_SECONDS
        entry = await self.redis.eval(_CLAIM, 2, DEAD_LETTERS_KEY, CLAIMS_KEY, deadline)
        return entry if isinstance(entry, bytes) else None

    async def _give_back(self, raw: bytes) -> None:
        await self.redis.eval(_GIVE_BACK, 2, DEAD_LETTERS_KEY, CLAIMS_KEY, raw)

    async def drain(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        """Write waiting records to the database, oldest first; how many were written.

        Stops (giving the entry back) as soon as the database is unreachable. A record of a
        kind this process has no writer for is given back for a worker that has one.
        """
        await self.redis.eval(_EXPIRED, 2, DEAD_LETTERS_KEY, CLAIMS_KEY, time.time())
        written = 0
        for _ in range(int(await self.redis.llen(DEAD_LETTERS_KEY))):
            raw = await self._claim()
            if raw is None:
                break
            try:
                letter = _decode(raw)
            except (ValueError, KeyError, TypeError):
                logger.error("dropped an unreadable dead-letter entry (%d bytes)", len(raw))
                await self.redis.hdel(CLAIMS_KEY, raw)
                continue
            writer = _WRITERS.get(letter.kind)
            if writer is None:
                await self._give_back(raw)
                continue
            try:
                async with sessions.begin() as session:
                    await writer(session, letter)
            except Exception as exc:
                if is_database_unreachable(exc):
                    DATABASE.unreachable(exc)
                    await self._give_back(raw)
                    break
                logger.error(
                    "dropped a %s dead letter the database refused: %s",
                    letter.kind,
                    type(exc).__name__,
                )
                await self.redis.hdel(CLAIMS_KEY, raw)
                continue
            DATABASE.reachable()
            await self.redis.hdel(CLAIMS_KEY, raw)
            written += 1
        if written:
            logger.info("wrote %d record(s) kept in Redis while the database was away", written)
        return written
