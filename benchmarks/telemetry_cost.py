"""The throughput cost of telemetry: jobs/s with tracing and metrics on, against off.

Each mode runs in its own process (telemetry is set up once per process), one after the other,
in the same invocation: 3,000 no-op jobs, queued first, then drained by one in-process worker
built like ``arq jobs.email.WorkerSettings``. "on" exports spans and metrics over OTLP/HTTP to
a local receiver (as to Jaeger); "off" is ``OTEL_SDK_DISABLED=true``.

    python -m benchmarks.telemetry_cost [--jobs 3000] [--rounds 3]

Needs Redis at 127.0.0.1:6379 (database 8 is flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

from jobs import JobContext, job

REDIS_URL = "redis://127.0.0.1:6379/8"


@job(family="email", name="bench_noop")
async def noop(ctx: JobContext, number: int) -> int:
    """Do nothing but return: the cost measured is the runtime's."""
    return number


async def drain(count: int) -> float:
    """Queue ``count`` no-op jobs, then time one worker draining them; jobs per second."""
    from arq.worker import Worker
    from redis.asyncio import Redis

    from jobs.client import create_pool
    from jobs.db import create_engine, upgrade
    from jobs.settings import load_settings
    from jobs.worker import worker_options

    settings = load_settings()
    engine = create_engine(settings)
    await upgrade(engine)
    await engine.dispose()
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    pool = await create_pool(settings)
    for number in range(count):
        await pool.enqueue_job("bench_noop", number=number)
    await pool.aclose()
    # the worker connects by itself, exactly as under `arq jobs.email.WorkerSettings`
    options = worker_options("email", settings, [noop], [])
    worker = Worker(**options, burst=True, handle_signals=False, ctx={"settings": settings})
    started = time.perf_counter()
    try:
        await worker.main()
    finally:
        elapsed = time.perf_counter() - started
        await worker.close()
    assert worker.jobs_complete == count, worker.jobs_complete
    return count / elapsed


def run_mode(mode: str, count: int, endpoint: str, data_dir: str) -> float:
    """Jobs/s of one mode, measured in a fresh process."""
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "DATA_DIR": data_dir,
        "LOG_LEVEL": "WARNING",
        "WORKER_POLL_DELAY": "0.05",
    }
    env.pop("DATABASE_URL", None)
    if mode == "on":
        env.update(
            OTEL_SDK_DISABLED="false",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_METRIC_EXPORT_INTERVAL="1000",
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        )
    else:
        env.update(
            OTEL_SDK_DISABLED="true", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none"
        )
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.telemetry_cost", "--child", "--jobs", str(count)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    """Alternate the modes for a few rounds and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(asyncio.run(drain(args.jobs)))
        return
    from tests.otlp_receiver import OtlpReceiver

    results: dict[str, list[float]] = {"off": [], "on": []}
    with OtlpReceiver() as receiver, tempfile.TemporaryDirectory() as data_dir:
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                results[mode].append(run_mode(mode, args.jobs, receiver.endpoint, data_dir))
        spans = len(receiver.received())
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(f"{args.jobs} no-op jobs, one worker, {args.rounds} rounds (median jobs/s)")
    print(
        f"telemetry off: {off:8.0f} jobs/s   runs: {', '.join(f'{r:.0f}' for r in results['off'])}"
    )
    print(f"telemetry on:  {on:8.0f} jobs/s   runs: {', '.join(f'{r:.0f}' for r in results['on'])}")
    print(
        f"cost of tracing + metrics: {100 * (1 - on / off):.1f}% ({spans} spans received over OTLP)"
    )


if __name__ == "__main__":
    main()
