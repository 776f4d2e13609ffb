"""The runtime as shipped: ``arq benchmarks.runtime.runtime_jobs.WorkerSettings``.

Three jobs in the email family (its queue, its default tuning), run by the family worker with
the project's defaults; the benchmark adds only the OTLP exporter settings.
"""

from __future__ import annotations

from typing import Any

from benchmarks.runtime.recorder import ready, run_job
from jobs import JobContext, job
from jobs.worker import FamilyWorkerSettings


@job(family="email", name="bench_runtime_noop")
async def noop(ctx: JobContext, sent: float) -> None:
    """Do nothing: what is measured is the runtime."""
    await run_job("noop", sent)


@job(family="email", name="bench_runtime_io")
async def io(ctx: JobContext, sent: float) -> None:
    """Wait 25 ms, like a short network call."""
    await run_job("io", sent)


@job(family="email", name="bench_runtime_probe")
async def probe(ctx: JobContext, sent: float) -> None:
    """Record how long after it was sent the job started."""
    await run_job("probe", sent)


class WorkerSettings(FamilyWorkerSettings, family="email"):
    """The email family's worker settings, with the benchmark's jobs."""

    functions = [noop, io, probe]


_family_startup = WorkerSettings.on_startup


async def _startup(ctx: dict[str, Any]) -> None:
    await _family_startup(ctx)  # type: ignore[operator]
    await ready()


WorkerSettings.on_startup = _startup  # type: ignore[assignment]
NAMES = {"noop": "bench_runtime_noop", "io": "bench_runtime_io", "probe": "bench_runtime_probe"}
