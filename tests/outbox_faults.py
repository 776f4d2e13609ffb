"""E-mail worker processes killed mid-delivery: the scenarios behind the outbox fault tests.

Each scenario starts ``arq jobs.email.WorkerSettings`` as a process, SIGKILLs it while it
is sending through a slowed SMTP server, starts a new worker and watches what arrives. The
fault tests assert on the figures; ``python -m benchmarks.email_recovery`` prints them.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import create_pool
from jobs.db import EmailStatus, OutboundEmail
from jobs.db.outbox import queue_email
from jobs.settings import Settings
from tests.processes import WorkerProcess, worker_environment
from tests.smtp_server import SmtpServer

__all__ = ["Recovery", "kill_mid_send", "kill_mid_sweep"]

#: ARQ's in-progress key of a job (the job runs again once it is gone).
IN_PROGRESS_PREFIX = "arq:in-progress:"


@dataclass
class Recovery:
    """What arrived at the SMTP server after a worker was killed mid-delivery."""

    queued: int
    #: Messages the server had accepted when the worker was killed.
    received_at_kill: int
    #: Seconds from the kill to the arrival of the last missing message (None: never).
    kill_to_delivery: float | None = None
    #: Seconds from the kill to the second worker being ready.
    kill_to_restart: float = 0.0
    #: Copies received per recipient, with the Message-IDs they carried.
    copies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        """Queued e-mails that never arrived."""
        return self.queued - len(self.copies)

    @property
    def duplicates(self) -> int:
        """Copies beyond the first."""
        return sum(len(ids) - 1 for ids in self.copies.values())

    @property
    def duplicates_keep_their_message_id(self) -> bool:
        """Whether every copy of an e-mail carries the Message-ID of its first copy."""
        return all(len(set(ids)) == 1 for ids in self.copies.values())

    def line(self, label: str) -> str:
        """One row of a report."""
        delivery = "never" if self.kill_to_delivery is None else f"{self.kill_to_delivery:.1f}s"
        return (
            f"{label:34} queued={self.queued} at-kill={self.received_at_kill} lost={self.lost} "
            f"duplicates={self.duplicates} same-id={self.duplicates_keep_their_message_id} "
            f"kill->delivered={delivery} restart={self.kill_to_restart:.1f}s"
        )


def _copies(smtp: SmtpServer) -> dict[str, list[str]]:
    copies: dict[str, list[str]] = defaultdict(list)
    for message in smtp.messages:
        copies[str(message["To"])].append(str(message["Message-ID"]))
    return dict(copies)


async def _wait_for(smtp: SmtpServer, recovery: Recovery, killed: float, within: float) -> None:
    deadline = killed + within
    while time.monotonic() < deadline:
        recovery.copies = _copies(smtp)
        if not recovery.lost:
            recovery.kill_to_delivery = time.monotonic() - killed
            return
        await asyncio.sleep(0.05)


def _kill(worker: WorkerProcess) -> float:
    assert worker.process is not None
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()
    return time.monotonic()


async def kill_mid_sweep(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    workdir: Path,
    smtp: SmtpServer,
    *,
    count: int = 60,
    kill_after: int = 20,
    within: float = 60.0,
    env: dict[str, str] | None = None,
) -> Recovery:
    """Kill a worker after ``kill_after`` of ``count`` e-mails of one sweep arrived.

    A second worker starts and the sweep is enqueued again, as the cron would.
    """
    async with sessions.begin() as session:
        for i in range(count):
            await queue_email(session, to=f"user{i}@example.com", subject=f"#{i}", text="hi")
    environment = worker_environment(settings, **(env or {}))
    pool = await create_pool(settings)
    first = WorkerProcess("email", environment, workdir).start()
    second = WorkerProcess("email", environment, workdir)
    try:
        await first.wait_ready()
        await pool.enqueue_job("process_email_queue")
        while len(smtp.messages) < kill_after:
            assert first.exit_code is None, first.output
            await asyncio.sleep(0.01)
        killed = _kill(first)
        recovery = Recovery(queued=count, received_at_kill=len(smtp.messages))
        second.start()
        await second.wait_ready()
        recovery.kill_to_restart = time.monotonic() - killed
        await pool.enqueue_job("process_email_queue")
        await _wait_for(smtp, recovery, killed, within)
        return recovery
    finally:
        if second.process is not None:
            second.stop()
        if first.exit_code is None:
            first.stop()
        await pool.aclose()


async def kill_mid_send(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    workdir: Path,
    smtp: SmtpServer,
    *,
    within: float = 60.0,
    rerun_at_once: bool = False,
    env: dict[str, str] | None = None,
) -> Recovery:
    """Kill a worker while ``send_email``'s message is in SMTP (DATA is slowed), start another.

    With ``rerun_at_once`` the killed job's in-progress key is deleted at the kill, so the
    second worker runs the job again as soon as it starts (as if ARQ's in-progress lease had
    already run out); otherwise ARQ runs it again when the key expires.
    """
    environment = worker_environment(settings, **(env or {}))
    pool = await create_pool(settings)
    redis = Redis.from_url(settings.redis_url)
    first = WorkerProcess("email", environment, workdir).start()
    second = WorkerProcess("email", environment, workdir)
    try:
        await first.wait_ready()
        await pool.enqueue_job(
            "send_email", to="now@example.com", subject="Now", text="hi", _job_id="mail-kill"
        )
        while not await _status_is(sessions, EmailStatus.SENDING):
            assert first.exit_code is None, first.output
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the message is in DATA now
        killed = _kill(first)
        if rerun_at_once:
            await redis.delete(IN_PROGRESS_PREFIX + "mail-kill")
        recovery = Recovery(queued=1, received_at_kill=len(smtp.messages))
        second.start()
        await second.wait_ready()
        recovery.kill_to_restart = time.monotonic() - killed
        await _wait_for(smtp, recovery, killed, within)
        return recovery
    finally:
        if second.process is not None:
            second.stop()
        if first.exit_code is None:
            first.stop()
        await pool.aclose()
        await redis.aclose()


async def _status_is(sessions: async_sessionmaker[AsyncSession], status: EmailStatus) -> bool:
    async with sessions() as session:
        return (await session.scalar(select(OutboundEmail.status))) is status
