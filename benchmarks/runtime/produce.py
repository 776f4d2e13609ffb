"""A producer process: ``python -m benchmarks.runtime.produce SYSTEM KIND COUNT [--trickle]``.

Enqueues COUNT jobs of KIND one after another through SYSTEM's own client and prints the rate
as JSON. With ``--trickle`` it waits 20 to 60 ms between jobs, so an idle worker picks each up on
its own (for pick-up times). The runtime's producer traces every enqueue and exports the spans
over OTLP, as the project ships it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

Enqueue = Callable[[str, float], Awaitable[Any]]


async def _runtime() -> tuple[Enqueue, Callable[[], Awaitable[None]]]:
    from benchmarks.runtime.runtime_jobs import NAMES
    from jobs.client import create_pool
    from jobs.settings import get_settings
    from jobs.telemetry import configure_telemetry, shutdown_telemetry

    settings = get_settings()
    configure_telemetry(settings, "email", owned_by_worker=True)
    pool = await create_pool(settings)

    async def close() -> None:
        await pool.aclose()
        shutdown_telemetry()

    return lambda kind, sent: pool.enqueue_job(NAMES[kind], sent=sent), close


async def _arq() -> tuple[Enqueue, Callable[[], Awaitable[None]]]:
    from arq.connections import RedisSettings, create_pool

    pool = await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))
    return lambda kind, sent: pool.enqueue_job(kind, sent=sent), pool.aclose


async def _saq() -> tuple[Enqueue, Callable[[], Awaitable[None]]]:
    from benchmarks.runtime.saq_jobs import queue

    saq_queue = queue()
    await saq_queue.connect()
    return lambda kind, sent: saq_queue.enqueue(kind, sent=sent), saq_queue.disconnect


CLIENTS = {"runtime": _runtime, "arq": _arq, "arq-10ms": _arq, "saq": _saq}


async def produce(system: str, kind: str, count: int, trickle: bool) -> dict[str, float]:
    """Enqueue ``count`` jobs; the rate (jobs/s) over the whole loop."""
    enqueue, close = await CLIENTS[system]()
    await enqueue(kind, time.time())  # connections and scripts warmed up, not timed
    started = time.perf_counter()
    for _ in range(count - 1):
        if trickle:
            await asyncio.sleep(random.uniform(0.02, 0.06))
        await enqueue(kind, time.time())
    elapsed = time.perf_counter() - started
    await close()
    return {"rate": (count - 1) / elapsed}


def main() -> None:
    """Parse the arguments, produce, print the result as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=sorted(CLIENTS))
    parser.add_argument("kind", choices=["noop", "io", "probe"])
    parser.add_argument("count", type=int)
    parser.add_argument("--trickle", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(produce(args.system, args.kind, args.count, args.trickle))))


if __name__ == "__main__":
    main()
