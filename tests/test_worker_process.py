"""`arq jobs.email.WorkerSettings` as a subprocess delivers to a real SMTP server."""

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
from tests.smtp_server import SmtpServer

ARQ = str(Path(sys.executable).with_name("arq"))


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment a deployed worker would get, pointing at the test services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "EMAIL_", "OTEL_"))}
    env.update(
        REDIS_URL=settings.redis_url,
        DATABASE_URL=settings.resolved_database_url,
        SMTP_HOST=settings.smtp_host,
        SMTP_PORT=str(settings.smtp_port),
        WORKER_POLL_DELAY="0.05",
        OTEL_TRACES_EXPORTER="none",
    )
    return env


@pytest.mark.slow
@pytest.mark.usefixtures("engine")
async def test_arq_worker_process_delivers_an_enqueued_email(
    pool: JobsPool, settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """An e-mail enqueued through the client reaches the SMTP server via the worker process."""
    worker = subprocess.Popen(  # noqa: ASYNC220 - the worker must be a separate process
        [ARQ, "jobs.email.WorkerSettings"],
        env=worker_environment(settings),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        job = await pool.enqueue_job(
            "send_email", to="process@example.com", subject="From a worker", text="delivered"
        )
        assert job is not None
        deadline = time.monotonic() + 30
        while not smtp_server.messages and time.monotonic() < deadline:
            assert worker.poll() is None, worker.communicate()[0]
            await asyncio.sleep(0.1)
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
