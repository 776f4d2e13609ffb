"""Pages of a family's queue read straight from ARQ's sorted set, by rank, never all of it.

A family's queue is a sorted set scored by due time: the jobs due now ("queued") are its first
ranks, the deferred ones the ranks after them. A page is one ``ZCOUNT`` (where "due" ends) and
one ``ZRANGE`` by rank — O(log N + page size) at any depth — then one pipelined read of the
page's payloads, in-progress markers and try counters. Payloads are checked like a worker
checks them (:func:`jobs.envelope.envelope_problem`) and shown with secrets masked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from redis.asyncio import Redis

from jobs.constants import HEADERS_KWARG, queue_name
from jobs.envelope import envelope_problem
from jobs.errors import UnknownJobError
from jobs.redaction import Redactor
from jobs.registry import get_job, jobs_of_family, mask_secret_names
from jobs.serializer import deserialize
from jobs.storable import safe_text

__all__ = [
    "PAGE_SIZE",
    "QueuePage",
    "QueuedJob",
    "masked_arguments",
    "read_queue_page",
    "trace_id_of",
]

PAGE_SIZE = 50
QueueState = Literal["queued", "deferred"]


@dataclass(frozen=True)
class QueuedJob:
    """One entry of a queue as the dashboard shows it."""

    job_id: str
    scheduled_at: dt.datetime
    name: str | None = None
    enqueued_at: dt.datetime | None = None
    tries: int = 0
    arguments: dict[str, Any] | None = None
    running: bool = False
    trace_id: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class QueuePage:
    """One page of a family's queued or deferred jobs."""

    family: str
    state: QueueState
    page: int
    size: int
    total: int
    jobs: list[QueuedJob]

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.size))


def masked_arguments(name: str, kwargs: dict[str, Any], redact: Redactor) -> dict[str, Any]:
    """A job's keyword arguments as a page may show them: secrets masked, trace context left out."""
    shown = {key: value for key, value in kwargs.items() if key != HEADERS_KWARG}
    try:
        shown = get_job(name).masked(shown)
    except UnknownJobError:
        shown = mask_secret_names(shown)
    masked: dict[str, Any] = redact.values(shown)
    return masked


def trace_id_of(kwargs: dict[str, Any]) -> str | None:
    """The trace id of the producer's ``traceparent`` carried in a payload, if well-formed."""
    headers = kwargs.get(HEADERS_KWARG)
    parent = headers.get("traceparent") if isinstance(headers, dict) else None
    parts = parent.split("-") if isinstance(parent, str) else []
    if len(parts) == 4 and len(parts[1]) == 32 and all(c in "0123456789abcdef" for c in parts[1]):
        return parts[1]
    return None


def _when_ms(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC)


def _entry(
    job_id: str,
    score: float,
    raw: bytes | None,
    names: frozenset[str],
    queue: str,
    redact: Redactor,
) -> QueuedJob:
    scheduled = _when_ms(score)
    if raw is None:
        return QueuedJob(job_id, scheduled, problem="no payload (finished or expired)")
    try:
        data = deserialize(raw)
    except Exception as error:
        return QueuedJob(job_id, scheduled, problem=f"unreadable payload: {type(error).__name__}")
    problem = envelope_problem(data, names, queue)
    if problem is not None:
        return QueuedJob(job_id, scheduled, problem=redact(problem))
    tries = data.get("t") if isinstance(data.get("t"), int) else 0
    return QueuedJob(
        job_id,
        scheduled,
        name=data["f"],
        enqueued_at=_when_ms(data["et"]),
        tries=tries or 0,
        arguments=masked_arguments(data["f"], data["k"], redact),
        trace_id=trace_id_of(data["k"]),
    )


async def read_queue_page(
    redis: Redis,
    family: str,
    state: QueueState,
    page: int,
    redact: Redactor,
    *,
    size: int = PAGE_SIZE,
    now: float | None = None,
) -> QueuePage:
    """Page ``page`` (from 0) of ``family``'s due (``queued``) or ``deferred`` jobs."""
    queue = queue_name(family)
    # ARQ's own clock (milliseconds, rounded), which scored the jobs and decides when they are due
    now_ms = timestamp_ms() if now is None else now * 1000
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zcount(queue, "-inf", now_ms)
        pipe.zcard(queue)
        due, everything = await pipe.execute()
    total = int(due) if state == "queued" else int(everything) - int(due)
    first = page * size + (0 if state == "queued" else int(due))
    last = min(first + size, (int(due) if state == "queued" else int(everything))) - 1
    members = await redis.zrange(queue, first, last, withscores=True) if last >= first else []
    ids = [member.decode("utf-8", "replace") for member, _ in members]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.get(job_key_prefix + job_id)
            pipe.exists(in_progress_key_prefix + job_id)
            pipe.get(retry_key_prefix + job_id)
        replies = await pipe.execute()
    names = frozenset(spec.name for spec in jobs_of_family(family))
    jobs = []
    for index, (job_id, score) in enumerate(zip(ids, (s for _, s in members), strict=True)):
        raw, running, retries = replies[3 * index : 3 * index + 3]
        entry = _entry(safe_text(job_id, 200), score, raw, names, queue, redact)
        started = int(retries) if retries and retries.isdigit() else 0
        jobs.append(
            QueuedJob(
                **{**entry.__dict__, "running": bool(running), "tries": max(entry.tries, started)}
            )
        )
    return QueuePage(family, state, page, size, total, jobs)
