"""Real worker processes for fault tests: `arq jobs.<family>.WorkerSettings` as a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobs.settings import Settings

__all__ = ["ARQ", "WorkerProcess", "worker_environment"]

ARQ = str(Path(sys.executable).with_name("arq"))


def worker_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment a deployed worker would get, pointing at the test services."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SMTP_", "EMAIL_", "OTEL_", "LLM_", "GOOGLE_", "REDIS_", "JOB_"))
    }
    env.update(
        REDIS_URL=settings.redis_url,
        DATABASE_URL=settings.resolved_database_url,
        SMTP_HOST=settings.smtp_host,
        SMTP_PORT=str(settings.smtp_port),
        WORKER_POLL_DELAY="0.05",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
    )
    env.update(overrides)
    return env


@dataclass
class WorkerProcess:
    """One worker subprocess; its output is collected in a file so it never blocks on a pipe."""

    family: str
    env: Mapping[str, str]
    cwd: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.cwd / f"worker-{self.family}-{time.monotonic_ns()}.log"

    def start(self) -> WorkerProcess:
        """Start the worker (it keeps running until :meth:`stop`)."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [ARQ, f"jobs.{self.family}.WorkerSettings"],
                env=dict(self.env),
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def output(self) -> str:
        """Everything the worker wrote so far."""
        return self.log_path.read_text(errors="replace")

    @property
    def exit_code(self) -> int | None:
        """None while it runs."""
        assert self.process is not None
        return self.process.poll()

    async def wait_ready(self, within: float = 60.0) -> None:
        """Until the worker logged that it is ready; fails if it exits first."""
        deadline = time.monotonic() + within
        while "worker ready on queue" not in self.output:
            assert self.exit_code is None, f"worker exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"worker not ready:\n{self.output}"
            await asyncio.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
