"""Job leases: a dead worker's jobs run again within the lease; a live worker's never do."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from arq.constants import in_progress_key_prefix

from jobs import JobsPool
from jobs.settings import Settings
from tests.processes import WorkerProcess, worker_environment
from tests.smtp_server import SmtpServer
from tests.worker_logs import job_starts

#: The lease the worker processes hold on their jobs here (renewed every third of it).
LEASE = 4.0
#: How long after the lease a killed worker's jobs may take to start again (a loaded host).
MARGIN = 10.0


async def _started(worker: WorkerProcess, job_ids: set[str], within: float) -> bool:
    """Whether ``worker`` logged a start of each of ``job_ids`` before ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if job_ids <= {start.job_id for start in job_starts(worker.output, "send_email")}:
            return True
        await asyncio.sleep(0.1)
    return False


async def _enqueue_emails(pool: JobsPool, count: int, label: str) -> list[str]:
    ids = []
    for number in range(count):
        handle = await pool.enqueue_job(
            "send_email", to="lease@example.com", subject=f"{label}-{number}", text="x"
        )
        assert handle is not None
        ids.append(handle.job_id)
    return ids


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_jobs_of_a_killed_worker_run_again_within_the_lease(
    pool: JobsPool, settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """A worker SIGKILLed mid-job: a live one starts its 3 jobs again (try 2) in lease + 10 s."""
    smtp_server.handler.data_delay = 30.0
    env = worker_environment(settings, WORKER_LEASE_SECONDS=str(LEASE))
    first = WorkerProcess("email", env, tmp_path).start()
    second: WorkerProcess | None = None
    try:
        await first.wait_ready()
        job_ids = await _enqueue_emails(pool, 3, "slow")
        assert await _started(first, set(job_ids), 30), first.output
        second = WorkerProcess("email", env, tmp_path).start()
        await second.wait_ready()
        ttl = await pool.pttl(in_progress_key_prefix + job_ids[0]) / 1000
        assert first.process is not None
        first.process.kill()
        first.process.wait()
        killed = time.time()
        await _started(second, set(job_ids), LEASE + MARGIN)
        again = {s.job_id: s for s in job_starts(second.output, "send_email")}
        delays = [again[job_id].at - killed for job_id in job_ids if job_id in again]
        print(
            f"crash recovery: {len(delays)}/{len(job_ids)} jobs started again within "
            f"{LEASE + MARGIN:g}s, the last after {max(delays, default=float('nan')):.1f}s "
            f"(in-progress key's TTL at the kill: {ttl:.1f}s)"
        )
        assert sorted(again) == sorted(job_ids)
        assert max(delays) <= LEASE + MARGIN
        assert {again[job_id].try_number for job_id in job_ids} == {2}
    finally:
        smtp_server.handler.data_delay = 0.0
        first.stop()
        if second is not None:
            second.stop(timeout=10)


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_job_longer_than_the_lease_is_not_taken_by_another_live_worker(
    pool: JobsPool, settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """With a 2 s lease and two live workers, an e-mail taking 8 s starts once, at try 1."""
    smtp_server.handler.data_delay = 8.0
    env = worker_environment(settings, WORKER_LEASE_SECONDS="2")
    workers = [WorkerProcess("email", env, tmp_path).start() for _ in range(2)]
    try:
        for worker in workers:
            await worker.wait_ready()
        [job_id] = await _enqueue_emails(pool, 1, "long")
        handle = await pool.job(job_id)
        result = await handle.result(timeout=60)
        starts = [s for w in workers for s in job_starts(w.output, "send_email")]
        print(f"long job: started {len(starts)} time(s) by two live workers")
        assert [(s.job_id, s.try_number) for s in starts] == [(job_id, 1)]
        assert result["status"] == "sent"
        assert len(smtp_server.messages) == 1
    finally:
        smtp_server.handler.data_delay = 0.0
        for worker in workers:
            worker.stop(timeout=10)
