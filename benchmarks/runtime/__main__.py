"""The runtime against plain ARQ and SAQ, on one Redis, in one invocation.

    python -m benchmarks.runtime [--redis-url redis://127.0.0.1:6379/15] [--rounds 3]

Systems: ``runtime`` (the project as shipped — ``arq …WorkerSettings`` of the email family,
its defaults, tracing and metrics exported over OTLP to a local endpoint, JSON logs), ``arq``
(plain ARQ, its defaults), ``arq-10ms`` (plain ARQ polling every 10 ms) and ``saq`` (when
installed: ``pip install -e '.[bench]'``). Every worker is a process started by its system's
own command, with 10 job slots; every figure is the median of interleaved rounds. The Redis
database named in the URL is flushed before each measurement, so it must be one nothing else
uses (not 0).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from benchmarks.runtime.receiver import OtlpSink
from benchmarks.runtime.redis_monitor import Monitor
from benchmarks.runtime.report import print_report

BIN = Path(sys.executable).parent
SLOTS = 10
IO_SECONDS = 0.025


@dataclass(frozen=True)
class System:
    """How to start one system's worker and where its jobs wait."""

    name: str
    worker: list[str]
    pending_key: str  # a sorted set that is empty once every job has finished


SYSTEMS = [
    System(
        "runtime",
        [str(BIN / "arq"), "benchmarks.runtime.runtime_jobs.WorkerSettings"],
        "jobs:queue:email",
    ),
    System("arq", [str(BIN / "arq"), "benchmarks.runtime.arq_jobs.WorkerSettings"], "arq:queue"),
    System(
        "arq-10ms",
        [str(BIN / "arq"), "benchmarks.runtime.arq_jobs.TunedWorkerSettings"],
        "arq:queue",
    ),
    System(
        "saq", [str(BIN / "saq"), "benchmarks.runtime.saq_jobs.settings"], "saq:default:incomplete"
    ),
]


@dataclass
class Bench:
    """One invocation: the Redis database, the OTLP endpoint, a scratch directory."""

    redis_url: str
    db: int
    otlp: str
    scratch: Path
    noop_jobs: int
    io_jobs: int
    drain_limit: float
    results: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def env(self, system: System, **more: str) -> dict[str, str]:
        """The environment of a worker or producer process of ``system``."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOG_", "WORKER_"))
        }
        env.update(REDIS_URL=self.redis_url, DATA_DIR=str(self.scratch), PYTHONPATH=os.getcwd())
        env.pop("DATABASE_URL", None)
        if system.name == "runtime":
            env.update(
                OTEL_TRACES_EXPORTER="otlp",
                OTEL_METRICS_EXPORTER="otlp",
                OTEL_EXPORTER_OTLP_ENDPOINT=self.otlp,
            )
        env.update(more)
        return env

    def record(self, system: System, metric: str, value: float) -> None:
        """Keep one round's figure."""
        self.results[metric][system.name].append(value)

    async def redis(self) -> Redis:
        """A single-connection client (its address is left out of command counts)."""
        return Redis.from_url(self.redis_url, single_connection_client=True)

    def produce(self, system: System, kind: str, count: int, trickle: bool = False) -> float:
        """Run a producer process; its enqueue rate."""
        command = [
            sys.executable,
            "-m",
            "benchmarks.runtime.produce",
            system.name,
            kind,
            str(count),
        ]
        result = subprocess.run(
            [*command, *(["--trickle"] if trickle else [])],
            env=self.env(system),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode:
            raise SystemExit(f"{system.name} producer failed:\n{result.stderr[-3000:]}")
        return float(json.loads(result.stdout)["rate"])

    def start_workers(
        self, system: System, count: int
    ) -> list[tuple[subprocess.Popen[bytes], Path, Path]]:
        """Start ``count`` worker processes; each with its stats and ready files."""
        workers = []
        gate = self.scratch / "gate"
        gate.unlink(missing_ok=True)
        for index in range(count):
            stats = self.scratch / f"{system.name}-{index}.json"
            ready = self.scratch / f"{system.name}-{index}.ready"
            log = (self.scratch / f"{system.name}-{index}.log").open("wb")
            stats.unlink(missing_ok=True)
            ready.unlink(missing_ok=True)
            env = self.env(
                system,
                BENCH_STATS_FILE=str(stats),
                BENCH_READY_FILE=str(ready),
                BENCH_GATE_FILE=str(gate),
            )
            process = subprocess.Popen(system.worker, env=env, stdout=log, stderr=subprocess.STDOUT)
            workers.append((process, stats, ready))
        return workers

    async def wait_ready(self, workers: list[tuple[subprocess.Popen[bytes], Path, Path]]) -> None:
        """Wait until every worker is in its start-up hook, then let them all begin."""
        deadline = time.monotonic() + 60
        while not all(ready.exists() for _, _, ready in workers):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _, _ in workers):
                raise SystemExit("a worker did not start; see its log in the scratch directory")
            await asyncio.sleep(0.02)
        (self.scratch / "gate").touch()

    def stop_workers(
        self, workers: list[tuple[subprocess.Popen[bytes], Path, Path]]
    ) -> list[dict[str, Any]]:
        """SIGTERM every worker, wait for it, read its stats."""
        for process, _, _ in workers:
            process.terminate()
        stats = []
        for process, path, _ in workers:
            process.wait(timeout=60)
            stats.append(json.loads(path.read_text()))
        return stats

    async def drained(self, system: System, redis: Redis, limit: float) -> None:
        """Wait until no job is pending, or ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while await redis.zcard(system.pending_key):
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)

    async def drain(self, system: System, kind: str, count: int, workers: int) -> dict[str, float]:
        """Queue ``count`` jobs, let ``workers`` processes run them: rate and CPU per job."""
        redis = await self.redis()
        await redis.flushdb()
        enqueue_rate = self.produce(system, kind, count)
        running = self.start_workers(system, workers)
        await self.wait_ready(running)
        await self.drained(system, redis, self.drain_limit)
        stats = self.stop_workers(running)
        await redis.aclose()
        done = sum(s["count"] for s in stats)
        span = max(s["last_end"] for s in stats) - min(
            s["first_start"] for s in stats if s["first_start"]
        )
        cpu = sum(s["cpu_last"] - s["cpu_first"] for s in stats)
        return {"rate": done / span, "cpu_ms": 1000 * cpu / done, "enqueue": enqueue_rate}

    async def idle_and_commands(self, system: System) -> None:
        """Idle load, Redis commands per job and pick-up times, on one idle worker."""
        redis = await self.redis()
        await redis.flushdb()
        me = str((await redis.client_info())["addr"])
        running = self.start_workers(system, 1)
        await self.wait_ready(running)
        await asyncio.sleep(1.5)
        idle_seconds = 10.0
        with Monitor(self.redis_url, self.db, self.scratch / "idle.monitor", {me}) as monitor:
            await asyncio.sleep(idle_seconds)
        idle = monitor.count()
        self.record(system, "idle_sent", idle.sent / idle_seconds)
        self.record(system, "idle_executed", idle.executed / idle_seconds)
        jobs = 500
        with Monitor(self.redis_url, self.db, self.scratch / "jobs.monitor", {me}) as monitor:
            started = time.monotonic()
            self.produce(system, "noop", jobs + 1)
            await self.drained(system, redis, 120)
            elapsed = time.monotonic() - started
        busy = monitor.count()
        background = elapsed / idle_seconds
        self.record(system, "job_sent", (busy.sent - idle.sent * background) / jobs)
        self.record(system, "job_executed", (busy.executed - idle.executed * background) / jobs)
        self.record(
            system, "job_round_trips", (busy.round_trips - idle.round_trips * background) / jobs
        )
        self.produce(system, "probe", 201, trickle=True)
        await asyncio.sleep(0.5)
        [stats] = self.stop_workers(running)
        await redis.aclose()
        pickups = sorted(stats["pickups"])
        self.record(system, "pickup_p50", 1000 * statistics.median(pickups))
        self.record(system, "pickup_p99", 1000 * pickups[int(0.99 * (len(pickups) - 1))])
        self.commands_seen = getattr(self, "commands_seen", {})
        self.commands_seen[system.name] = busy.by_command

    async def round(self, system: System) -> None:
        """Every measurement of one system, once."""
        noop = await self.drain(system, "noop", self.noop_jobs, 1)
        self.record(system, "noop", noop["rate"])
        self.record(system, "cpu_ms", noop["cpu_ms"])
        self.record(system, "enqueue", noop["enqueue"])
        io = await self.drain(system, "io", self.io_jobs, 1)
        self.record(system, "io", io["rate"])
        two = await self.drain(system, "noop", self.noop_jobs, 2)
        self.record(system, "two_workers", two["rate"] / noop["rate"])
        await self.idle_and_commands(system)


def _migrate(scratch: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATA_DIR"] = str(scratch)
    subprocess.run(
        [sys.executable, "-m", "jobs", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


async def run(args: argparse.Namespace) -> None:
    """Measure every system for ``args.rounds`` interleaved rounds and print the table."""
    db = int(args.redis_url.rsplit("/", 1)[1]) if args.redis_url.rsplit("/", 1)[1].isdigit() else 0
    if db == 0:
        raise SystemExit("give the benchmark a Redis database of its own: --redis-url …/<n>, n > 0")
    systems = [s for s in SYSTEMS if s.name in args.systems]
    if importlib.util.find_spec("saq") is None:
        systems = [s for s in systems if s.name != "saq"]
        print("saq is not installed (pip install -e '.[bench]'); leaving it out", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch, OtlpSink() as sink:
        _migrate(Path(scratch))
        bench = Bench(
            args.redis_url,
            db,
            sink.endpoint,
            Path(scratch),
            args.noop_jobs,
            args.io_jobs,
            args.drain_limit,
        )
        load = [os.getloadavg()[0]]
        for number in range(args.rounds):
            for system in systems:
                print(
                    f"round {number + 1}/{args.rounds}: {system.name}", file=sys.stderr, flush=True
                )
                await bench.round(system)
                load.append(os.getloadavg()[0])
        print_report(bench.results, [s.name for s in systems], args, load, sink.requests)
        if args.commands:
            for name, commands in bench.commands_seen.items():
                print(name, dict(sorted(commands.items(), key=lambda kv: -kv[1])))


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--noop-jobs", type=int, default=3000)
    parser.add_argument("--io-jobs", type=int, default=2000)
    parser.add_argument(
        "--drain-limit", type=float, default=12.0, help="seconds per drain, at most"
    )
    parser.add_argument("--systems", nargs="+", default=[s.name for s in SYSTEMS])
    parser.add_argument(
        "--commands", action="store_true", help="also print the commands per system"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
