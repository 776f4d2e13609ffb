"""The worker's intake: queue entries ARQ would choke on are refused before ARQ sees them.

ARQ trusts its queue: a member that is not UTF-8, a score of ``-inf``, a job key that holds
a list or a retry count that is not a number raise from its main loop and stop the worker (and
the next one, once the entry's in-progress key expires). :class:`QueueGuard` wraps the one
Redis call ARQ polls its queue with (``ZRANGEBYSCORE`` on the worker's own connection) and
hands ARQ only entries with a valid job id (:mod:`jobs.limits`), a finite score and keys of the
right types. It takes every other entry out of the queue and records it as a refused payload
(:mod:`jobs.quarantine`). Each entry is checked once per worker, in one pipelined round trip
per poll that finds new entries.
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from typing import Any, Final

from arq.constants import job_key_prefix, retry_key_prefix
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.dead_letters import DeadLetters
from jobs.limits import job_id_problem
from jobs.quarantine import record_refused_payload
from jobs.redaction import Redactor
from jobs.serializer import deserialize

__all__ = ["QueueGuard"]

logger = logging.getLogger("jobs.intake")

#: Admitted entries remembered per worker, so each is checked once.
REMEMBERED: Final = 10_000
_RETRY_COUNT = re.compile(rb"-?\d{1,15}")


def _text(reply: object) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


class QueueGuard:
    """Lets ARQ read from ``queue`` only entries it can handle; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        queue: str,
        sessions: async_sessionmaker[AsyncSession],
        redactor: Redactor,
        max_payload_bytes: int,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.sessions = sessions
        self.redactor = redactor
        self.max_payload_bytes = max_payload_bytes
        #: Where refusals wait while the database is unreachable (set by the worker).
        self.dead_letters: DeadLetters | None = None
        self._admitted: OrderedDict[bytes, None] = OrderedDict()
        self._read = redis.zrangebyscore

    def install(self) -> None:
        """Route the worker's queue reads on ``redis`` through the guard."""
        self.redis.zrangebyscore = self._zrangebyscore  # type: ignore[method-assign]

    async def _zrangebyscore(
        self,
        name: Any,
        min: Any,
        max: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Any = float,
    ) -> Any:
        if name != self.queue or withscores:
            return await self._read(
                name,
                min,
                max,
                start=start,
                num=num,
                withscores=withscores,
                score_cast_func=score_cast_func,
            )
        rows = await self._read(name, min, max, start=start, num=num, withscores=True)
        return await self.admit([(bytes(member), float(score)) for member, score in rows])

    async def admit(self, rows: list[tuple[bytes, float]]) -> list[bytes]:
        """The members of ``rows`` ARQ may take, in order; the others are refused."""
        problems: dict[bytes, str] = {}
        fresh = []
        for member, score in rows:
            if member in self._admitted:
                continue
            problem = job_id_problem(member)
            if problem is None and not math.isfinite(score):
                problem = f"score {score} is not a time"
            if problem is None:
                fresh.append(member)
            else:
                problems[member] = problem
        if fresh:
            problems.update(await self._key_problems(fresh))
        admitted = []
        for member, _ in rows:
            if member in problems:
                await self.refuse(member, problems[member])
                continue
            admitted.append(member)
            self._admitted[member] = None
            if len(self._admitted) > REMEMBERED:
                self._admitted.popitem(last=False)
        return admitted

    async def _key_problems(self, members: list[bytes]) -> dict[bytes, str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.type(job_key_prefix.encode() + member)
                pipe.type(retry_key_prefix.encode() + member)
                pipe.get(retry_key_prefix.encode() + member)
            replies = await pipe.execute(raise_on_error=False)
        problems = {}
        for index, member in enumerate(members):
            job_type, retry_type, retry_count = replies[3 * index : 3 * index + 3]
            job_type, retry_type = _text(job_type), _text(retry_type)
            if job_type not in ("string", "none"):
                problems[member] = f"job key holds a {job_type}, not a payload"
            elif retry_type not in ("string", "none"):
                problems[member] = f"retry count key holds a {retry_type}"
            elif retry_type == "string" and not (
                isinstance(retry_count, bytes) and _RETRY_COUNT.fullmatch(retry_count)
            ):
                problems[member] = "retry count is not an integer"
        return problems

    async def key_problem(self, member: bytes) -> str | None:
        """What is wrong with the keys of queue entry ``member``, if anything."""
        return (await self._key_problems([member])).get(member)

    async def refuse(self, member: bytes, reason: str) -> None:
        """Take ``member`` out of the queue and record it as a refused payload."""
        if not await self.redis.zrem(self.queue, member):
            return  # another worker refused it first
        job_key = job_key_prefix.encode() + member
        size: int | None = None
        name: str | None = None
        arguments: Any = None
        if _text(await self.redis.type(job_key)) == "string":
            size = int(await self.redis.strlen(job_key))
            if size <= self.max_payload_bytes:
                try:
                    data = deserialize(await self.redis.get(job_key) or b"")
                except Exception:  # unreadable: recorded with its size only
                    logger.debug("refused entry %r has an unreadable payload", member)
                else:
                    if isinstance(data, dict):
                        name = data.get("f") if isinstance(data.get("f"), str) else None
                        arguments = data.get("k")
        await self.redis.delete(job_key, retry_key_prefix.encode() + member)
        await record_refused_payload(
            self.sessions,
            self.redactor,
            queue=self.queue,
            job_id=member,
            reason=reason,
            size=size,
            job_name=name,
            arguments=arguments,
            dead_letters=self.dead_letters,
        )
