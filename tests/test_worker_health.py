"""`python -m jobs health --self/--pid`: one worker process's own health, beside its siblings."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs import JobsPool
from jobs.monitor import live_workers
from jobs.settings import Settings
from tests.test_observability_process import start_worker as start_arq_worker
from tests.test_worker_process import worker_environment

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("engine"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

HEARTBEAT = 0.5  # seconds; a worker that misses two beats is unhealthy


@pytest.fixture
def environment(settings: Settings) -> dict[str, str]:
    """The workers' and the health checks' environment, with fast heartbeats."""
    return worker_environment(settings) | {"WORKER_HEARTBEAT_INTERVAL": str(HEARTBEAT)}


@pytest.fixture
def start_worker(
    environment: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Starts `arq jobs.email.WorkerSettings` processes; kills whatever is left at the end."""
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        worker = start_arq_worker(environment, tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGCONT)
            worker.kill()
        worker.communicate(timeout=30)  # reaps it and closes its output pipe


async def check(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m jobs health …` as a container's health check runs it."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "jobs", "health", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def eventually_exits(
    environment: dict[str, str], args: tuple[str, ...], code: int, seconds: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the check until it exits with ``code`` (failing after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check(environment, *args)
        if result.returncode == code:
            return result
        assert time.monotonic() < deadline, (args, result.stdout, result.stderr)
        await asyncio.sleep(HEARTBEAT)


@pytest.fixture
async def two_workers(
    pool: JobsPool, start_worker: Callable[[], subprocess.Popen[str]]
) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    """Two email worker processes on this host, both beating."""
    workers = start_worker(), start_worker()
    deadline = time.monotonic() + 30
    while {w.pid for w in await live_workers(pool, "email")} != {w.pid for w in workers}:
        assert all(w.poll() is None for w in workers), "a worker exited"
        assert time.monotonic() < deadline, "the workers never beat"
        await asyncio.sleep(0.1)
    return workers


async def test_each_worker_check_follows_its_own_process(
    environment: dict[str, str], two_workers: tuple[subprocess.Popen[str], ...]
) -> None:
    """Of two email workers, a stopped (SIGSTOP) one turns unhealthy, the other stays healthy."""
    first, second = two_workers
    first_check = ("--self", "email", "--pid", str(first.pid))
    second_check = ("--self", "email", "--pid", str(second.pid))
    assert (await check(environment, *first_check)).returncode == 0
    assert (await check(environment, *second_check)).returncode == 0

    os.kill(first.pid, signal.SIGSTOP)  # hung: alive, but its heartbeat stops
    hung = await eventually_exits(environment, first_check, 1)
    assert f"email: worker {first.pid}" in hung.stdout or "no heartbeat" in hung.stdout
    healthy = await check(environment, *second_check)
    assert healthy.returncode == 0, healthy.stdout
    assert healthy.stdout.startswith(f"email: worker {second.pid} on ")

    os.kill(first.pid, signal.SIGCONT)
    await eventually_exits(environment, first_check, 0)


async def test_a_stopped_sibling_never_fails_the_check_of_a_running_worker(
    environment: dict[str, str], two_workers: tuple[subprocess.Popen[str], ...]
) -> None:
    """SIGTERM one of two email workers: its check fails at once, the other's never does."""
    first, second = two_workers
    second.send_signal(signal.SIGTERM)
    await asyncio.to_thread(second.wait, 30)
    gone = await check(environment, "--self", "email", "--pid", str(second.pid))
    assert gone.returncode == 1
    assert gone.stdout.strip() == (
        f"email: no heartbeat from the worker (host {socket.gethostname()}, pid {second.pid}) "
        f"in the last {2 * HEARTBEAT:g}s"
    )
    for _ in range(3):  # across several beats, not one lucky moment
        alive = await check(environment, "--self", "email", "--pid", str(first.pid))
        assert alive.returncode == 0, alive.stdout
        assert (await check(environment, "--self", "email")).returncode == 0
        await asyncio.sleep(HEARTBEAT)


async def test_self_check_needs_a_family(environment: dict[str, str]) -> None:
    """`health --self` without a family is a usage error (exit 2) naming what is missing."""
    result = await check(environment, "--self")
    assert result.returncode == 2
    assert "name the FAMILY of the worker to check" in result.stderr
