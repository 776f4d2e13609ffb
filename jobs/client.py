"""What producers use: a Redis pool whose ``enqueue_job`` routes, validates and traces.

``await pool.enqueue_job("send_email", to="a@example.com", subject="Hi", text="…")`` looks the
job up by name (an unknown name raises :class:`UnknownJobError` at once), validates the
arguments against its signature (:class:`JobArgumentsError`), opens a PRODUCER span
``send {queue}``, writes the trace context into the payload, and enqueues to the queue of the
job's family — in one round trip that also wakes an idle worker of that family (see
:mod:`jobs.queue_scripts`). ARQ's own options (``_job_id``, ``_defer_by``, ``_defer_until``,
``_expires``, ``_job_try``) keep their meaning. A ``_job_id`` outside :mod:`jobs.limits` raises
:class:`InvalidJobIdError`, a payload over ``JOB_MAX_PAYLOAD_BYTES`` :class:`PayloadTooLargeError`.

A Redis that cannot be reached (stopped, restarting, failing over) is retried with backoff for
``REDIS_RETRY_SECONDS`` (5 s by default); then :class:`jobs.redis_link.RedisUnavailableError`
says so, instead of a hang.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import uuid4

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import Job, SerializationError, serialize_job
from arq.utils import timestamp_ms, to_ms, to_unix_ms
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind

from jobs.constants import HEADERS_KWARG, MESSAGING_SYSTEM, queue_name, wake_key
from jobs.control import JobHandle
from jobs.errors import JobArgumentsError, PayloadTooLargeError
from jobs.families import known_families
from jobs.limits import check_job_id
from jobs.metrics import METRICS
from jobs.queue_scripts import ENQUEUE, WAKE_CAP
from jobs.redis_connection import (
    close_sentinels,
    open_redis,
    redis_settings,
    redis_url_for_display,
)
from jobs.redis_link import REDIS_DOWN, RedisUnavailableError
from jobs.registry import get_job
from jobs.serializer import deserialize, payload_serializer
from jobs.settings import Settings, get_settings
from jobs.telemetry import inject_headers, instrument_redis_client, tracer

__all__ = ["JobsPool", "create_pool"]

T = TypeVar("T")

#: The shortest time one try may take, however little of REDIS_RETRY_SECONDS is left.
MIN_TRY_SECONDS = 1.0
#: The first and the longest pause between tries.
FIRST_PAUSE, MAX_PAUSE = 0.05, 1.0


class JobsPool(ArqRedis):
    """An ``ArqRedis`` whose ``enqueue_job`` routes jobs to their family's queue by name."""

    #: Seconds to keep retrying an unreachable Redis (``REDIS_RETRY_SECONDS``).
    retry_seconds: float = 5.0
    #: Where Redis is, for error messages (no password).
    redis_display: str = "(the pool's Redis)"

    async def enqueue_job(
        self,
        function: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: dt.datetime | None = None,
        _defer_by: float | dt.timedelta | None = None,
        _expires: float | dt.timedelta | None = None,
        _job_try: int | None = None,
        **kwargs: Any,
    ) -> JobHandle | None:
        """Enqueue job ``function`` with keyword arguments ``kwargs``.

        Returns the job's :class:`jobs.control.JobHandle`, or None when a job with ``_job_id``
        already exists.
        """
        spec = get_job(function)
        if args:
            raise JobArgumentsError(
                spec.name, [{"loc": ("args",), "msg": "pass job arguments by keyword"}]
            )
        if _job_id is not None:
            check_job_id(_job_id)
        if _queue_name is not None and _queue_name != spec.queue:
            raise ValueError(
                f"job {spec.name!r} belongs to queue {spec.queue!r}, not {_queue_name!r}"
            )
        payload = spec.encode(kwargs)
        attributes: dict[str, Any] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": spec.queue,
            "messaging.arq.job.name": spec.name,
        }
        if _job_id is not None:
            attributes["messaging.message.id"] = _job_id
        started = time.perf_counter()
        with tracer().start_as_current_span(
            f"send {spec.queue}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            payload[HEADERS_KWARG] = inject_headers()
            try:
                with suppress_instrumentation():  # the send span stands for its one Redis call
                    job = await self._enqueue_and_signal(
                        spec.name,
                        payload,
                        queue=spec.queue,
                        job_id=_job_id,
                        defer_until=_defer_until,
                        defer_by=_defer_by,
                        expires=_expires,
                        job_try=_job_try,
                    )
            except Exception as exc:
                if isinstance(exc, SerializationError) and isinstance(
                    exc.__cause__, PayloadTooLargeError
                ):
                    exc = exc.__cause__
                error_type = type(exc).__qualname__
                span.set_attribute("error.type", error_type)
                METRICS.message_sent(
                    spec.queue, spec.name, time.perf_counter() - started, error_type
                )
                if isinstance(exc, PayloadTooLargeError):
                    raise exc from None
                raise
            if job is None:
                span.set_attribute("messaging.arq.duplicate", True)
            else:
                span.set_attribute("messaging.message.id", job.job_id)
            METRICS.message_sent(
                spec.queue, spec.name, time.perf_counter() - started, sent=job is not None
            )
            return None if job is None else JobHandle.of(job)

    async def _enqueue_and_signal(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        queue: str,
        job_id: str | None,
        defer_until: dt.datetime | None,
        defer_by: float | dt.timedelta | None,
        expires: float | dt.timedelta | None,
        job_try: int | None,
    ) -> Job | None:
        """ARQ's ``enqueue_job`` in one round trip, waking an idle worker of the queue.

        The job, its score and expiry are exactly what ARQ would write; see
        :mod:`jobs.queue_scripts`.
        """
        if defer_until and defer_by:
            raise RuntimeError("use either 'defer_until' or 'defer_by' or neither, not both")
        given_id = job_id is not None
        job_id = job_id or uuid4().hex
        enqueue_time_ms = timestamp_ms()
        defer_by_ms = to_ms(defer_by)
        if defer_until is not None:
            score = to_unix_ms(defer_until)
        elif defer_by_ms:
            score = enqueue_time_ms + defer_by_ms
        else:
            score = enqueue_time_ms
        expires_ms = to_ms(expires) or score - enqueue_time_ms + self.expires_extra_ms
        data = serialize_job(
            name, (), kwargs, job_try, enqueue_time_ms, serializer=self.job_serializer
        )
        keys = [job_key_prefix + job_id, result_key_prefix + job_id, queue, wake_key(queue)]
        tries = 0

        async def enqueue() -> Any:
            nonlocal tries
            tries += 1
            return await ENQUEUE(self, keys, [job_id, data, expires_ms, score, WAKE_CAP])

        created = await self.reaching_redis(enqueue)
        if not created and tries > 1 and not given_id:
            created = 1  # the id is new: an earlier try wrote it, its answer was lost
        if not created:
            return None
        return Job(job_id, redis=self, _queue_name=queue, _deserializer=self.job_deserializer)

    async def reaching_redis(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, tried again with backoff while Redis is unreachable.

        After ``retry_seconds`` raises :class:`jobs.redis_link.RedisUnavailableError`. Each try is
        cut off after what is left of that time (at least a second), so nothing hangs.
        """
        deadline = time.monotonic() + self.retry_seconds
        pause = FIRST_PAUSE
        while True:
            left = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(left, MIN_TRY_SECONDS)):
                    return await call()
            except REDIS_DOWN as error:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RedisUnavailableError(
                        self.redis_display, self.retry_seconds, error
                    ) from error
                await asyncio.sleep(min(pause, left))
                pause = min(2 * pause, MAX_PAUSE)

    async def job(self, job_id: str) -> JobHandle:
        """A handle on job ``job_id`` (in whichever family's queue it waits).

        Its state, result or error, and abort: see :mod:`jobs.control`.
        """
        check_job_id(job_id)
        queues = [queue_name(family) for family in known_families()]
        async with self.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zscore(queue, job_id)
            scores = await pipe.execute()
        waiting = [queue for queue, score in zip(queues, scores, strict=True) if score is not None]
        queue = waiting[0] if waiting else queues[0]
        return JobHandle(job_id, self, _queue_name=queue, _deserializer=self.job_deserializer)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the connections (to the sentinels too, for a Sentinel-run Redis)."""
        await super().aclose(close_connection_pool)
        if close_connection_pool or (
            close_connection_pool is None and self.auto_close_connection_pool
        ):
            await close_sentinels(self)

    @classmethod
    def sharing(cls, redis: ArqRedis, settings: Settings) -> JobsPool:
        """A JobsPool on the same connections as ``redis`` (used inside workers)."""
        pool = cls(
            connection_pool=redis.connection_pool,
            job_serializer=payload_serializer(settings.job_max_payload_bytes),
            job_deserializer=deserialize,
        )
        pool.retry_seconds = settings.redis_retry_seconds
        pool.redis_display = redis_url_for_display(settings.redis_url)
        return pool


async def create_pool(
    settings: Settings | None = None, *, redis_url: str | None = None
) -> JobsPool:
    """Connect to ``REDIS_URL`` (or ``redis_url``) and return a :class:`JobsPool`.

    The URL is read as workers read it (:mod:`jobs.redis_connection`).

    Raises :class:`jobs.redis_link.RedisUnavailableError` (a ``redis.exceptions.ConnectionError``)
    if Redis cannot be reached within ``REDIS_RETRY_SECONDS``.
    """
    settings = settings or get_settings()
    url = redis_url or settings.redis_url
    pool = open_redis(redis_settings(url), JobsPool)
    pool.retry_seconds = settings.redis_retry_seconds
    pool.redis_display = redis_url_for_display(url)
    pool.job_serializer = payload_serializer(settings.job_max_payload_bytes)
    pool.job_deserializer = deserialize
    pool.auto_close_connection_pool = True
    instrument_redis_client(pool)
    try:
        await pool.reaching_redis(pool.ping)
    except Exception:
        await pool.aclose()
        raise
    return pool
