"""Where a no-op job's worker CPU goes, by layer: ``python -m benchmarks.runtime.layers``.

Drains no-op jobs through the runtime as shipped (as ``arq`` runs it: ARQ's log configuration,
JSON logs, tracing and metrics exported over OTLP to a local endpoint), in one process, twice:
once timed (CPU per job, main thread and export threads), once under ``cProfile``, whose
self-times are grouped by the package they are spent in. cProfile inflates small calls, so the
shares are a guide to where the time goes, not exact figures.

    python -m benchmarks.runtime.layers [--redis-url redis://127.0.0.1:6379/15] [--jobs 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging.config
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

from benchmarks.runtime.receiver import OtlpSink

#: (layer, substrings of the file path), first match wins.
LAYERS = [
    ("ARQ", ("/arq/",)),
    ("redis-py and hiredis", ("/redis/", "hiredis")),
    (
        "tracing (OpenTelemetry)",
        (
            "opentelemetry/sdk/trace",
            "opentelemetry/trace",
            "context",
            "propagat",
            "opentelemetry/util",
            "opentelemetry/baggage",
            "opentelemetry/attributes",
            "opentelemetry/semconv",
            "opentelemetry/instrumentation",
        ),
    ),
    ("metrics (OpenTelemetry)", ("opentelemetry/sdk/metrics", "opentelemetry/metrics")),
    ("logs", ("/logging/", "jobs/logs.py", "/json/", "redaction.py")),
    ("validation (pydantic)", ("pydantic",)),
    ("serialization (msgpack)", ("msgpack", "serializer.py")),
    ("failure bookkeeping", ("failures.py", "retry.py")),
    ("runtime wrapper and loop (jobs/)", ("/jobs/",)),
    ("event loop (asyncio)", ("asyncio", "selectors", "socket", "<built-in method select", "ssl")),
]


def _layer(filename: str) -> str:
    for name, needles in LAYERS:
        if any(needle in filename for needle in needles):
            return name
    return "other"


async def _drain(count: int, profile: cProfile.Profile | None) -> tuple[float, float, int]:
    from arq.logs import default_log_config

    from benchmarks.runtime.recorder import RECORDER
    from benchmarks.runtime.runtime_jobs import NAMES, WorkerSettings
    from jobs.client import create_pool
    from jobs.worker import create_worker

    logging.config.dictConfig(default_log_config(False))
    pool = await create_pool()
    await pool.flushdb()
    for _ in range(count):
        await pool.enqueue_job(NAMES["noop"], sent=time.time())
    await pool.aclose()
    worker = create_worker(WorkerSettings, burst=True, handle_signals=False)
    if profile is not None:
        RECORDER.on_first_start = profile.enable
    try:
        await worker.async_run()
    finally:
        if profile is not None:
            profile.disable()
        await worker.close()
    jobs = RECORDER.count - 1
    thread_cpu = RECORDER.thread_cpu_last - RECORDER.thread_cpu_first
    return thread_cpu / jobs, (RECORDER.cpu_last - RECORDER.cpu_first) / jobs, RECORDER.count


def child(count: int, profiled: bool) -> None:
    """Run one drain in this process and print its figures (and layers when profiled)."""
    profile = cProfile.Profile(time.thread_time) if profiled else None
    with (
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stderr(devnull),
        contextlib.redirect_stdout(devnull),
    ):
        thread_cpu, process_cpu, done = asyncio.run(_drain(count, profile))
    print(f"main thread {1000 * thread_cpu:.3f} ms/job, ", end="")
    print(f"whole process {1000 * process_cpu:.3f} ms/job ({done} jobs)")
    if profile is not None:
        _print_layers(pstats.Stats(profile), float(os.environ.get("BENCH_TIMED_MS", "0")))


def _print_layers(stats: pstats.Stats, timed_ms: float) -> None:
    """Self-time by layer; a built-in function's time goes to the layers of its callers."""
    by_layer: dict[str, float] = defaultdict(float)
    table = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, self_time, _, callers) in table.items():
        if filename != "~":
            by_layer[_layer(filename)] += self_time
            continue
        shares = {caller: timing[2] for caller, timing in callers.items()}
        spread = sum(shares.values()) or 1.0
        for caller, share in shares.items():
            by_layer[_layer(caller[0])] += self_time * share / spread
        if not shares:
            by_layer[_layer(function)] += self_time
    total = sum(by_layer.values())
    for name, seconds in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        estimate = f"  ~{timed_ms * seconds / total:.3f} ms/job" if timed_ms else ""
        print(f"  {name:36} {100 * seconds / total:5.1f} %{estimate}")


def main() -> None:
    """Measure in fresh processes: once timed, once profiled."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--child", choices=["timed", "profiled"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.jobs, args.child == "profiled")
        return
    with tempfile.TemporaryDirectory() as scratch, OtlpSink() as sink:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "LOG_", "WORKER_", "DATABASE_"))
        }
        env.update(
            REDIS_URL=args.redis_url,
            DATA_DIR=scratch,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
        )
        subprocess.run(
            [sys.executable, "-m", "jobs", "migrate"], env=env, check=True, capture_output=True
        )
        command = [sys.executable, "-m", "benchmarks.runtime.layers", "--jobs", str(args.jobs)]
        timed = subprocess.run(
            [*command, "--child", "timed"], env=env, check=True, capture_output=True, text=True
        ).stdout
        print(f"worker CPU per no-op job, the runtime as shipped: {timed.strip()}")
        env["BENCH_TIMED_MS"] = timed.split(" ms/job")[0].rsplit(" ", 1)[1]
        print("the main thread's CPU by layer (cProfile self-time shares):", flush=True)
        profiled = subprocess.run(
            [*command, "--child", "profiled"], env=env, check=True, capture_output=True, text=True
        ).stdout
        print("\n".join(profiled.splitlines()[1:]))


if __name__ == "__main__":
    main()
