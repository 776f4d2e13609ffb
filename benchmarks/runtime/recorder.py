"""What a benchmark worker process records about the jobs it ran, written out when it exits.

Every system's jobs call :data:`RECORDER` the same way, so the figures mean the same for all:
drain rates from the first start to the last end, CPU per job from ``time.process_time`` over
the same span, pick-up times from the producer's clock (same machine) to the job's start.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["RECORDER", "ready", "run_job"]


class Recorder:
    """Start and end times, CPU time and pick-up times of the jobs of one worker process."""

    def __init__(self) -> None:
        self.count = 0
        self.first_start: float | None = None
        self.last_end = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.thread_cpu_first = 0.0
        self.thread_cpu_last = 0.0
        self.pickups: list[float] = []
        self.on_first_start: Callable[[], None] | None = None

    def started(self) -> None:
        """A drained job started."""
        if self.first_start is None:
            if self.on_first_start is not None:
                self.on_first_start()
            self.first_start = time.time()
            self.cpu_first = time.process_time()
            self.thread_cpu_first = time.thread_time()

    def finished(self) -> None:
        """A drained job ended."""
        self.count += 1
        self.last_end = time.time()
        self.cpu_last = time.process_time()
        self.thread_cpu_last = time.thread_time()

    def write(self) -> None:
        """Write the figures to ``BENCH_STATS_FILE`` (at exit)."""
        path = os.environ.get("BENCH_STATS_FILE")
        if path:
            figures = {k: v for k, v in vars(self).items() if k != "on_first_start"}
            Path(path).write_text(json.dumps(figures))


RECORDER = Recorder()
atexit.register(RECORDER.write)


async def run_job(kind: str, sent: float) -> None:
    """The body of every benchmark job: ``noop``, ``io`` (25 ms of waiting) or ``probe``."""
    if kind == "probe":
        RECORDER.pickups.append(time.time() - sent)
        return
    RECORDER.started()
    if kind == "io":
        await asyncio.sleep(0.025)
    RECORDER.finished()


def _touch_ready() -> None:
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        Path(path).touch()


def _gate_open() -> bool:
    gate = os.environ.get("BENCH_GATE_FILE")
    return not gate or Path(gate).exists()


async def ready() -> None:
    """Say the worker has started (``BENCH_READY_FILE``), then wait for ``BENCH_GATE_FILE``.

    Called from the start-up hook, before the worker takes any job, so that several workers
    begin on a full queue together.
    """
    _touch_ready()
    polls = 0
    while not _gate_open():
        polls += 1
        await asyncio.sleep(0.005)
