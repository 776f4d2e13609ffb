"""The worker's loop: ARQ's ``Worker``, woken by producers instead of sleeping between polls.

ARQ polls its queue, then sleeps ``poll_delay`` — even when it has just filled every slot and
more jobs wait — so short jobs run at most ``max_jobs / poll_delay`` per second and an idle
worker picks a job up after up to one poll. :class:`JobsWorker` keeps ARQ's jobs, keys, cron,
retries, aborts, health check and burst mode, and changes when it polls:

- after a poll that left due jobs for lack of slots, it polls again as soon as a slot frees;
- otherwise it blocks (``BLPOP``) on its queue's wake-up list, which :class:`jobs.JobsPool`
  pushes to in the round trip that enqueues a job, and polls when a signal arrives;
- it polls at the latest when the next deferred job or cron run is due, and every
  ``WORKER_POLL_DELAY`` seconds as a fallback for producers that bypass the client;
- it claims and finishes jobs with the one-round-trip scripts of :mod:`jobs.queue_scripts`,
  holding a short lease on each job it runs, renewed while the job runs (:mod:`jobs.lease`);
- it rides out a Redis outage (:mod:`jobs.redis_link`): its loop waits for Redis with backoff,
  running jobs go on, and a job's result that Redis could not take is written once it is back;
  a claimed entry ARQ cannot run (an id or score ARQ would choke on, or keys on which Redis
  refuses ARQ's commands) is handed to the family's :class:`jobs.intake.QueueGuard`
  (``ctx["queue_guard"]``), which takes it out of the queue and records it.

``python -m jobs worker`` builds a :class:`JobsWorker`. ``arq jobs.<family>.WorkerSettings``
builds ARQ's own ``Worker`` (ARQ offers no setting for the class); the family's start-up hook
turns that worker into a :class:`JobsWorker` (:func:`adopt_running_worker`) before ARQ's loop
begins. Both rely on ARQ 0.28.0's internals, pinned in ``pyproject.toml`` and checked by
``tests/test_worker_loop.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from typing import Any, cast

from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms, to_ms
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from jobs.constants import wake_key
from jobs.intake import QueueGuard
from jobs.lease import JobLeases
from jobs.limits import job_id_problem
from jobs.queue_scripts import CLAIM, FINISH, WAKE_CAP
from jobs.redis_link import REDIS_DOWN, RedisLink, describe

__all__ = ["JobsWorker", "adopt_running_worker"]

logger = logging.getLogger("jobs.worker")

#: Seconds one BLPOP on the wake-up list blocks before it is renewed (one command each time).
LISTEN_SECONDS = 5.0
#: ARQ enqueues a cron run when it is due within twice its window (0.5 s, see ``heart_beat``).
CRON_LEAD_SECONDS = 0.5


class JobsWorker(Worker):
    """ARQ's worker with a wake-up signal and one-round-trip claims; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_jobs_loop()

    def _init_jobs_loop(self) -> None:
        self.leases = JobLeases()
        self.link = RedisLink()
        self.ctx["redis_link"] = self.link
        self._lease_keeper: asyncio.Task[None] | None = None
        self.fallback_poll_s = self.poll_delay_s
        self.poll_delay_s = 0.0  # ARQ's loop no longer sleeps; _wait_for_work waits instead
        self._wake_key = wake_key(self.queue_name)
        self._work_left = False
        self._timed_poll = False
        self._next_due: float | None = None  # loop time of the next deferred job
        self._waiter: asyncio.Future[None] | None = None
        self._wake_on_slot = False
        self._listener: asyncio.Task[Any] | None = None
        self._give_back: asyncio.Task[None] | None = None
        self._listen_again_at = 0.0

    def configure(self, lease_seconds: float) -> None:
        """Take the settings ARQ's options cannot carry: the length of the job leases."""
        self.leases.seconds = lease_seconds

    # --- one iteration of ARQ's loop: cron, claim, aborts, then wait -------------------------

    async def _poll_iteration(self) -> None:
        if self._lease_keeper is None:
            self._lease_keeper = self.loop.create_task(
                self.leases.keep(self.pool, lambda: self.tasks)
            )
        try:
            if not self.link.up:
                raise RedisConnectionError("a running job could not reach Redis")
            await self._poll_once()
        except REDIS_DOWN as error:
            await self.link.ride_out(self.pool, error, self._take_back_leases)

    async def _take_back_leases(self) -> None:
        self.leases.held.intersection_update(self.tasks)
        await self.leases.renew(self.pool, take_back=True)

    async def _poll_once(self) -> None:
        await self._reap_finished_tasks()
        limit = self.max_jobs - self.job_counter
        if self.burst and self.max_burst_jobs >= 0:
            limit = min(limit, self.max_burst_jobs - self._jobs_started())
            if limit < 1:
                return
        await self.heart_beat()  # cron runs first, so that the claim below sees them
        if self.allow_pick_jobs and limit > 0:
            await self._claim_and_start(limit)
        if self.allow_abort_jobs and self.job_tasks:  # a queued job's abort is read as it starts
            await self._cancel_aborted_jobs()
        await self._wait_for_work()

    async def _reap_finished_tasks(self) -> None:
        for job_id, task in list(self.tasks.items()):
            if not task.done():
                continue
            del self.tasks[job_id]
            error = None if task.cancelled() else task.exception()
            if isinstance(error, REDIS_DOWN):
                # it could not start: its lease lapses and a worker runs it again
                logger.warning(
                    "job %s could not start, Redis unreachable (%s); it runs again",
                    job_id,
                    describe(error),
                    extra={"job": {"job_id": job_id}},
                )
                self.link.went_down(error)
                continue
            if isinstance(error, ResponseError) and self.ctx.get("queue_guard") is not None:
                # Redis refused ARQ's own commands on the entry: its keys are not what ARQ wrote
                guard: QueueGuard = self.ctx["queue_guard"]
                member = job_id.encode()
                await self._refuse(member, await guard.key_problem(member) or str(error))
                continue
            task.result()  # other errors in run_job propagate, as in ARQ

    def _claim_arguments(self) -> list[Any]:
        """CLAIM's ARGV 1 and 3 to 7 (the free slots, ARGV 2, go between)."""
        return [
            timestamp_ms(),
            self.queue_read_limit,
            self.leases.milliseconds,
            in_progress_key_prefix,
            # after a timed poll the list is empty, or the BLPOP would have returned
            0 if self._timed_poll else 1,
            self.leases.token,
        ]

    async def _claim_and_start(self, limit: int) -> None:
        now, *rest = self._claim_arguments()
        reply = await CLAIM(self.pool, [self.queue_name, self._wake_key], [now, limit, *rest])
        await self._start_claimed(reply)

    async def _start_claimed(self, reply: list[Any], reserved: bool = False) -> None:
        """Start the jobs of a CLAIM reply; ``reserved``: a permit is held for the first."""
        claimed: list[bytes] = reply[0]
        self._work_left = bool(reply[1])
        self._next_due = None
        if len(reply) > 2:
            due_in = float(reply[2]) / 1000 - time.time()
            self._next_due = self.loop.time() + max(0.0, due_in)
        refused: list[tuple[bytes, str]] = []
        for index in range(0, len(claimed), 2):
            member, score = claimed[index], float(claimed[index + 1])
            problem = job_id_problem(member) or (
                None if math.isfinite(score) else f"score {score} is not a time"
            )
            if problem is not None:
                refused.append((member, problem))
                continue
            if reserved:
                reserved = False
            else:
                await self.sem.acquire()  # ARQ's semaphore stays in step with job_counter
            self.job_counter += 1
            job_id = member.decode()
            self.leases.held.add(job_id)
            task = self.loop.create_task(self.run_job(job_id, int(score)))
            task.add_done_callback(self._job_done)
            self.tasks[job_id] = task
        if reserved:
            self.sem.release()
        for member, problem in refused:
            await self._refuse(member, problem)

    async def _refuse(self, member: bytes, problem: str) -> None:
        """Hand a claimed queue entry ARQ cannot run to the family's guard, which records it."""
        guard: QueueGuard | None = self.ctx.get("queue_guard")
        if guard is None:
            raise RuntimeError(f"queue entry {member!r}: {problem}")
        await guard.refuse(member, problem)
        await self.pool.delete(in_progress_key_prefix.encode() + member)

    def _job_done(self, _: asyncio.Task[Any]) -> None:
        self._release_sem_dec_counter_on_complete()
        if self._wake_on_slot and (self.burst or self.job_counter < self.max_jobs):
            self._wake()

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """ARQ's ``finish_job`` in one round trip; a job kept for a retry wakes a worker.

        While due jobs wait, the same round trip claims the next one for the slot this job
        frees (it starts at once, taking ARQ's spare semaphore permit until this job's task
        ends), so a busy worker refills its slots without going through its loop. While Redis
        is unreachable, the job keeps its lease and its result waits for Redis.
        """
        first = True
        while True:
            self.leases.held.discard(job_id)
            try:
                await self._finish_once(
                    job_id,
                    finish,
                    result_data,
                    result_timeout_s,
                    keep_result_forever,
                    incr_score,
                    keep_in_progress,
                    may_chain=first,
                )
                return
            except REDIS_DOWN as error:
                await self._wait_for_redis(job_id, error)
            first = False

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """ARQ's ``finish_failed_job``, its result waiting for Redis while Redis is away."""
        while True:
            self.leases.held.discard(job_id)
            try:
                await super().finish_failed_job(job_id, result_data)
                return
            except REDIS_DOWN as error:
                await self._wait_for_redis(job_id, error)

    async def _wait_for_redis(self, job_id: str, error: BaseException) -> None:
        """Hold the job's lease (taken back when Redis returns) and wait for Redis."""
        self.leases.held.add(job_id)
        self.link.went_down(error)
        self._wake()  # the loop rides out the outage
        await self.link.wait_up()

    async def _finish_once(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
        *,
        may_chain: bool,
    ) -> None:
        forever = keep_result_forever or result_timeout_s is None
        expire_ms = 0 if forever else to_ms(result_timeout_s)
        chain = (
            may_chain
            and self._work_left
            and self.allow_pick_jobs
            and not (self.burst and self.max_burst_jobs >= 0)
            and not self.sem.locked()
        )
        if chain:
            await self.sem.acquire()  # free at once: checked just above
        now, scan, ttl, prefix, _, token = self._claim_arguments()
        try:
            reply = await FINISH(
                self.pool,
                [
                    in_progress_key_prefix + job_id,
                    job_key_prefix + job_id,
                    retry_key_prefix + job_id,
                    result_key_prefix + job_id,
                    self.queue_name,
                    abort_jobs_ss,
                    self._wake_key,
                ],
                [
                    job_id,
                    1 if finish else 0,
                    result_data or b"",
                    expire_ms,
                    incr_score or 0,
                    -1 if keep_in_progress is None else to_ms(keep_in_progress),
                    WAKE_CAP,
                    1 if chain else 0,
                    now,
                    scan,
                    ttl,
                    prefix,
                    token,
                ],
            )
        except BaseException:
            if chain:
                self.sem.release()
            raise
        if chain:
            await self._start_claimed(reply, reserved=True)

    # --- waiting: for a free slot, a signal, the next due job or the fallback poll -----------

    def _deadline(self) -> float:
        now_loop = self.loop.time()
        deadline = now_loop + self.fallback_poll_s
        if self._next_due is not None:
            if self._next_due <= now_loop:
                # it came due while every slot was taken: poll as soon as one frees
                self._next_due, self._work_left = None, True
            else:
                deadline = min(deadline, self._next_due)
        now = time.time()
        for cron_job in self.cron_jobs:
            if cron_job.next_run is not None:
                due_in = cron_job.next_run.timestamp() - now - CRON_LEAD_SECONDS
                deadline = min(deadline, self.loop.time() + due_in)
        return deadline

    async def _wait_for_work(self) -> None:
        """Return when a poll may find work; see the module docstring for when that is."""
        self._timed_poll = False
        deadline = self._deadline()
        while True:
            if not self.link.up:
                return  # a job found Redis away: the loop rides the outage out
            free = self.allow_pick_jobs and self.job_counter < self.max_jobs
            if free and self._work_left:
                return
            if free and not self._listening():
                return  # a signal was popped while this worker was busy
            if deadline <= self.loop.time():
                self._timed_poll = True
                return
            self._wake_on_slot = self.burst or not free
            self._waiter = self.loop.create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._waiter
            except TimeoutError:
                self._timed_poll = True
                return
            finally:
                self._waiter = None
                self._wake_on_slot = False
            if self._signalled() or self.burst or free:
                return

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _listening(self) -> bool:
        """Make sure a BLPOP waits on the wake-up list; False if it already holds a signal."""
        if self._listener is not None:
            if not self._listener.done():
                return True
            if self._signalled():
                return False
        if self.loop.time() < self._listen_again_at:
            return True  # Redis failed the last BLPOP; the fallback poll carries on meanwhile
        self._listener = self.loop.create_task(
            self.pool.blpop([self._wake_key], timeout=LISTEN_SECONDS)  # type: ignore[arg-type]
        )
        self._listener.add_done_callback(self._heard)
        return True

    def _heard(self, listener: asyncio.Task[Any]) -> None:
        if listener.cancelled():
            return
        error = listener.exception()
        if error is not None:
            if not isinstance(error, RedisError | OSError):
                raise error
            logger.debug("waiting for a wake-up signal failed: %r", error)
            self._listen_again_at = self.loop.time() + self.fallback_poll_s
            self._listener = None
            self._wake()  # the loop's next poll finds out whether Redis is away
        elif listener.result() is None:
            self._listener = None  # BLPOP timed out: renew it at the next wait
            if self._waiter is not None and not self._wake_on_slot:
                self._listening()
        elif self.allow_pick_jobs and self.job_counter < self.max_jobs:
            self._wake()
        else:  # popped while every slot is taken: hand it to another worker of the family
            self._listener = None
            self._give_back = self.loop.create_task(self._give_back_signal())

    async def _give_back_signal(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.pool.execute_command("LPUSH", self._wake_key, b"1")  # type: ignore[no-untyped-call]

    def _signalled(self) -> bool:
        """Whether the finished BLPOP popped a signal; it is consumed by asking."""
        listener = self._listener
        if listener is None or not listener.done() or listener.cancelled():
            return False
        if listener.exception() is not None or listener.result() is None:
            return False
        self._listener = None
        return True

    async def close(self) -> None:
        """Stop renewing leases and waiting on the wake-up list, then close as ARQ does."""
        if self._lease_keeper is not None:
            self._lease_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_keeper
            self._lease_keeper = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._listener
            self._listener = None
        await super().close()


def adopt_running_worker() -> JobsWorker | None:
    """Turn the ARQ worker whose start-up hook is running into a :class:`JobsWorker`.

    Called from a family's start-up hook, which ARQ's ``Worker.main`` awaits before its loop
    starts: the worker is ``main``'s ``self``, found on the call stack. Returns None when the
    hook runs outside a worker (a test calling it directly).
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is Worker.main.__code__:
            worker = frame.f_locals.get("self")
            if isinstance(worker, JobsWorker):
                return worker
            if isinstance(worker, Worker):
                worker.__class__ = JobsWorker
                adopted = cast(JobsWorker, worker)
                adopted._init_jobs_loop()
                return adopted
        frame = frame.f_back  # type: ignore[assignment]
    return None
