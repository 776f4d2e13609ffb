"""A Redis restart while jobs run and are being enqueued: workers ride it out, nothing is lost."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from jobs.client import JobsPool, create_pool
from jobs.settings import Settings
from tests.processes import WorkerProcess, worker_environment
from tests.redis_servers import RedisProcess
from tests.smtp_server import SmtpServer
from tests.worker_logs import job_starts, log_records

#: How long Redis stays away.
OUTAGE = 8.0
#: How long producers retry an unreachable Redis here (REDIS_RETRY_SECONDS).
PRODUCER_RETRY = 2.0


async def _enqueue_all(pool: JobsPool, label: str, count: int) -> None:
    for number in range(count):
        await pool.enqueue_job(
            "send_email", to="outage@example.com", subject=f"{label}-{number:02d}", text="x"
        )


async def _command(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jobs ARGV`` to its end."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "jobs", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_worker_rides_out_a_redis_restart_and_every_email_is_sent_once(
    settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """Redis stopped 8 s under load: the worker lives, each e-mail is sent once, producers fail.

    The worker logs one line when Redis goes and one when it is back; `health --self` says
    Redis is unreachable during the outage and tells the outage once it is over.
    """
    redis = RedisProcess(tmp_path / "redis", persistent=True).start()
    outage_settings = settings.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{redis.port}/0",
            "redis_retry_seconds": PRODUCER_RETRY,
        }
    )
    env = worker_environment(outage_settings, REDIS_RETRY_SECONDS=str(PRODUCER_RETRY))
    smtp_server.handler.data_delay = 1.0  # e-mails are being sent when Redis stops
    pool = await create_pool(outage_settings)
    worker = WorkerProcess("email", env, tmp_path).start()
    try:
        await worker.wait_ready()
        await _enqueue_all(pool, "before", 10)
        await asyncio.sleep(0.3)
        redis.stop()
        stopped = time.monotonic()

        started = time.monotonic()
        try:
            await pool.enqueue_job(
                "send_email", to="outage@example.com", subject="during", text="x"
            )
            producer_error: BaseException | None = None
        except Exception as error:
            producer_error = error
        producer_waited = time.monotonic() - started
        cli = await _command(
            env, tmp_path, "enqueue", "send_email", "to=a@example.com", "subject=cli", "text=x"
        )
        health_down = await _command(env, tmp_path, "health", "--self", "email")
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
        redis.start()
        back = time.monotonic()
        await _enqueue_all(pool, "after", 10)

        subjects = [f"{label}-{n:02d}" for label in ("before", "after") for n in range(10)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not set(subjects) <= {
            m["Subject"] for m in smtp_server.messages
        }:
            if worker.exit_code is not None:
                break
            await asyncio.sleep(0.1)
        all_sent_after = time.monotonic() - back
        await asyncio.sleep(2.0)  # a beat after the return, and any late duplicate
        health_up = await _command(env, tmp_path, "health", "--self", "email")
        alive = worker.exit_code is None
    finally:
        smtp_server.handler.data_delay = 0.0
        await pool.aclose()
        worker.stop()
        redis.stop()

    sent = Counter(str(m["Subject"]) for m in smtp_server.messages)
    starts = Counter(s.job_id for s in job_starts(worker.output, "send_email"))
    messages = [str(r.get("message")) for r in log_records(worker.output)]
    down_lines = [m for m in messages if m.startswith("Redis unreachable")]
    back_lines = [m for m in messages if m.startswith("Redis reachable again after")]
    delivered = sum(1 for s in subjects if sent[s])
    print(
        f"redis outage {OUTAGE:g}s: worker alive {alive}; sent {delivered}/{len(subjects)}, "
        f"lost {len(subjects) - delivered}, duplicate e-mails "
        f"{sum(max(0, sent[s] - 1) for s in subjects)}, job re-runs "
        f"{sum(n - 1 for n in starts.values())}; all sent {all_sent_after:.1f}s after Redis was "
        f"back; producer answered after {producer_waited:.1f}s with "
        f"{type(producer_error).__name__}; log lines down/back {len(down_lines)}/{len(back_lines)}"
    )
    from jobs.redis_link import RedisUnavailableError

    assert alive, worker.output[-3000:]
    assert [sent[s] for s in subjects] == [1] * len(subjects)
    assert "during" not in sent and "cli" not in sent
    assert isinstance(producer_error, RedisUnavailableError)
    assert PRODUCER_RETRY <= producer_waited <= PRODUCER_RETRY + 3
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert "is unreachable" in cli.stderr and "REDIS_RETRY_SECONDS" in cli.stderr
    assert health_down.returncode == 1 and "is unreachable" in health_down.stderr
    assert health_up.returncode == 0, health_up.stdout + health_up.stderr
    assert "Redis was unreachable for" in health_up.stdout
    assert len(down_lines) == 1 and len(back_lines) == 1, messages
