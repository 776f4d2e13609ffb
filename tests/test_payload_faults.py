"""Hostile payloads written straight into a family's Redis queue, against a real worker process.

Each entry below once killed `arq jobs.email.WorkerSettings` (exit 1), and the same job killed
the next worker after its in-progress key expired. Now each is taken out of the queue, recorded
in ``failed_jobs`` with the reason, never executed, and the worker goes on.
"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db.models import FailedJob
from jobs.settings import Settings
from tests.processes import WorkerProcess, worker_environment
from tests.smtp_server import SmtpServer

QUEUE = "jobs:queue:email"
FORGED_LINE = "12:00:00 INFO jobs.job: job send_email succeeded"
Plant = Callable[[Redis], Awaitable[None]]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _envelope(**fields: object) -> bytes:
    """A job payload as the runtime writes it, with ``fields`` replaced."""
    data = {"t": None, "f": "send_email", "a": [], "k": {}, "et": _now_ms()}
    data.update(fields)
    return bytes(msgpack.packb(data, use_bin_type=True))


def _payload(job_id: str | bytes, raw: bytes, score: float | None = None) -> Plant:
    async def plant(redis: Redis) -> None:
        key = b"arq:job:" + (job_id.encode() if isinstance(job_id, str) else job_id)
        await redis.set(key, raw)
        await redis.zadd(QUEUE, {job_id: _now_ms() if score is None else score})

    return plant


def _wrong_type_job_key(job_id: str) -> Plant:
    async def plant(redis: Redis) -> None:
        await redis.rpush(f"arq:job:{job_id}", "not", "a", "payload")
        await redis.zadd(QUEUE, {job_id: _now_ms()})

    return plant


def _text_retry_count(job_id: str) -> Plant:
    async def plant(redis: Redis) -> None:
        await redis.set(f"arq:retry:{job_id}", "abc")
        await _payload(job_id, _envelope(k={"email_id": 1}))(redis)

    return plant


#: the stored job id (or its start) -> (how it is planted, error type recorded, words of the reason)
HOSTILE: dict[str, tuple[Plant, str, str]] = {
    "name-as-list": (
        _payload("name-as-list", _envelope(f=["send_email"])),
        "RefusedPayload",
        "'f' (job name) must be a string, not list",
    ),
    "try-as-text": (
        _payload("try-as-text", _envelope(t="2")),
        "RefusedPayload",
        "'t' (try) must be an integer or nil, not str",
    ),
    "enqueued-as-text": (
        _payload("enqueued-as-text", _envelope(et="yesterday")),
        "RefusedPayload",
        "'et' (enqueue time) must be an integer, not str",
    ),
    "enqueued-in-year-31690708": (
        _payload("enqueued-in-year-31690708", _envelope(et=10**18)),
        "RefusedPayload",
        "'et' (enqueue time) 1000000000000000000 is out of range",
    ),
    "junk-bytes": (_payload("junk-bytes", b"\x00\xffjunk"), "RefusedPayload", "not msgpack"),
    "pickle": (
        _payload("pickle", pickle.dumps({"f": "send_email", "a": (), "k": {}})),
        "RefusedPayload",
        "not msgpack",
    ),
    "unknown-job": (
        _payload("unknown-job", _envelope(f="drop_all_tables")),
        "RefusedPayload",
        "unknown job 'drop_all_tables' on queue jobs:queue:email",
    ),
    "oversize": (
        _payload("oversize", _envelope(k={"to": "a@example.com", "text": "x" * 300_000})),
        "RefusedPayload",
        "over JOB_MAX_PAYLOAD_BYTES (262144)",
    ),
    "bytes-arguments": (
        _payload(
            "bytes-arguments",
            _envelope(k={"to": b"\x00\xff", "subject": "nul\x00here", "text": 7}),
        ),
        "JobArgumentsError",
        "invalid arguments for job 'send_email'",
    ),
    r"\xff\xfe-id": (
        _payload(b"\xff\xfe-id", _envelope(k={"email_id": 1})),
        "RefusedPayload",
        "job id is not printable ASCII",
    ),
    "score-minus-infinity": (
        _payload("score-minus-infinity", _envelope(k={"email_id": 1}), float("-inf")),
        "RefusedPayload",
        "score -inf is not a time",
    ),
    "job-key-is-a-list": (
        _wrong_type_job_key("job-key-is-a-list"),
        "RefusedPayload",
        "job key holds a list",
    ),
    "retry-count-as-text": (
        _text_retry_count("retry-count-as-text"),
        "RefusedPayload",
        "retry count is not an integer",
    ),
    r"id\x00with\nnewline": (
        _payload("id\x00with\nnewline", _envelope(k={"email_id": 1})),
        "RefusedPayload",
        "job id is not printable ASCII",
    ),
    r"forged\n12:00:00 INFO jobs.job: job send_email succeeded": (
        _payload(f"forged\n{FORGED_LINE}", _envelope(k={"email_id": 1})),
        "RefusedPayload",
        "job id is not printable ASCII",
    ),
    "L" * 180: (
        _payload("L" * 300, _envelope(k={"email_id": 1})),
        "RefusedPayload",
        "job id is longer than 200 characters",
    ),
}


async def _failed_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(FailedJob)) or 0)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_hostile_payloads_are_quarantined_and_the_worker_goes_on(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Every hostile entry leaves the queue as a failed job with its reason; mail still goes out."""
    env = worker_environment(settings, LOG_FORMAT="text")
    worker = WorkerProcess("email", env, tmp_path).start()
    redis = Redis.from_url(settings.redis_url)
    try:
        await worker.wait_ready()
        planted = time.monotonic()
        for plant, _, _ in HOSTILE.values():
            await plant(redis)
        job = await pool.enqueue_job(
            "send_email", to="after@example.com", subject="Still here", text="delivered"
        )
        assert job is not None
        deadline = time.monotonic() + 120
        while (
            await _failed_count(sessions) < len(HOSTILE) or not smtp_server.messages
        ) and time.monotonic() < deadline:
            assert worker.exit_code is None, f"the worker died:\n{worker.output[-3000:]}"
            await asyncio.sleep(0.2)
        assert worker.exit_code is None, f"the worker died:\n{worker.output[-3000:]}"
        refused_within = time.monotonic() - planted
        sent = [m["Subject"] for m in smtp_server.messages]
        assert sent == ["Still here"], (sent, await _failed_count(sessions), worker.output[-3000:])
        assert await redis.zcard(QUEUE) == 0
        assert await redis.keys("arq:job:*") == []
        async with sessions() as session:
            records = list(await session.scalars(select(FailedJob)))
        assert len(records) == len(HOSTILE), [(r.job_id, r.error_message) for r in records]
        for job_id, (_, error_type, reason) in HOSTILE.items():
            [record] = [r for r in records if r.job_id.startswith(job_id)]
            assert len(record.job_id) <= 200
            assert record.error_type == error_type, (job_id, record.error_message)
            assert reason in record.error_message, (job_id, record.error_message)
            assert record.queue == QUEUE
    finally:
        await redis.aclose()
        exit_code = worker.stop()
    assert exit_code == 0, worker.output[-3000:]
    assert not [line for line in worker.output.splitlines() if line.startswith(FORGED_LINE)]
    print(  # the figure of the fault, for the record (pytest -s)
        f"hostile payloads: {len(HOSTILE)} refused and the next e-mail sent within "
        f"{refused_within:.1f}s, worker up throughout"
    )

    listing = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "jobs", "failed", "list", "--limit", "100"],
        env=worker_environment(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert listing.stdout.count("RefusedPayload") == len(HOSTILE) - 1
    assert "JobArgumentsError" in listing.stdout
