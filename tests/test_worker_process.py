"""Worker processes (`arq jobs.email.WorkerSettings`, `python -m jobs worker`) as deployed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs import JobsPool
from jobs.settings import Settings
from tests.processes import ARQ, worker_environment
from tests.smtp_server import SmtpServer


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "command",
    [[ARQ, "jobs.email.WorkerSettings"], [sys.executable, "-m", "jobs", "worker", "email"]],
    ids=["arq", "python-m-jobs"],
)
async def test_worker_process_is_woken_by_an_enqueued_email(
    pool: JobsPool,
    settings: Settings,
    smtp_server: SmtpServer,
    tmp_path: Path,
    command: list[str],
) -> None:
    """An e-mail enqueued to an idle worker process (fallback poll 5 s) is sent within 2.5 s."""
    env = worker_environment(settings)
    env["WORKER_POLL_DELAY"] = "5"
    worker = subprocess.Popen(  # noqa: ASYNC220 - the worker must be a separate process
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not await pool.exists("jobs:queue:email:health-check"):
            assert worker.poll() is None, worker.communicate()[0]
            assert time.monotonic() < deadline, "the worker never started its loop"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # idle, blocked on the wake-up list
        sent = time.monotonic()
        job = await pool.enqueue_job(
            "send_email", to="process@example.com", subject="From a worker", text="delivered"
        )
        assert job is not None
        while not smtp_server.messages and time.monotonic() < sent + 30:
            assert worker.poll() is None, worker.communicate()[0]
            await asyncio.sleep(0.01)
        assert time.monotonic() - sent < 2.5
        [message] = smtp_server.messages
        assert message["Subject"] == "From a worker"
        assert message.get_content().strip() == "delivered"
        assert (await job.result(timeout=10))["status"] == "sent"
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
    assert worker.returncode == 0, output
    assert "email worker ready on queue jobs:queue:email" in output


@pytest.mark.slow
def test_unreachable_redis_ends_with_one_line_saying_how_to_start_it(tmp_path: Path) -> None:
    """`arq jobs.email.WorkerSettings` against a closed port exits 1 with the one-line hint."""
    from tests.smtp_server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_"))}
    env.update(REDIS_URL=f"redis://127.0.0.1:{port}", DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [ARQ, "jobs.email.WorkerSettings"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1
    assert last_line.startswith(f"Redis at redis://127.0.0.1:{port} is unreachable (")
    assert "Start one with `redis-server --daemonize yes`" in last_line
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sync_worker_without_its_key_refuses_to_start_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    """`arq jobs.sync.WorkerSettings` without TOKEN_ENCRYPTION_KEY exits with one line about it."""
    env = worker_environment(settings)
    env.pop("TOKEN_ENCRYPTION_KEY", None)
    result = await asyncio.to_thread(
        subprocess.run,
        [ARQ, "jobs.sync.WorkerSettings"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("jobs: TOKEN_ENCRYPTION_KEY is not set; the sync jobs need it")
    )
