"""Envelope checks, safe failed-job records and the enqueue limits on payload size and job ids."""

from __future__ import annotations

import time
from typing import Any

import msgpack
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.constants import REFUSED_PAYLOAD_JOB
from jobs.db.models import FailedJob
from jobs.envelope import envelope_problem, worker_deserializer
from jobs.errors import InvalidJobIdError, PayloadTooLargeError
from jobs.serializer import serialize
from jobs.settings import Settings
from tests import sample_jobs
from tests.conftest import make_worker, run_burst

QUEUE = "jobs:queue:email"
NAMES = frozenset({"test_echo"})


def _envelope(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"t": None, "f": "test_echo", "a": [], "k": {}, "et": 1_700_000_000_000}
    data.update(fields)
    return data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (["f", "a"], "payload is a list, not a map"),
        (_envelope(f=["test_echo"]), "field 'f' (job name) must be a string, not list"),
        (_envelope(f="other"), "unknown job 'other' on queue jobs:queue:email"),
        (_envelope(f=REFUSED_PAYLOAD_JOB), "is reserved for refused payloads"),
        (_envelope(a="abc"), "field 'a' (positional arguments) must be a list, not str"),
        (_envelope(k=[1]), "field 'k' (keyword arguments) must be a map, not list"),
        (_envelope(k={1: 2}), "field 'k' (keyword arguments) has a key that is not a string"),
        (_envelope(k={"__headers__": {"traceparent": 5}}), "must be a map of strings"),
        (_envelope(t="2"), "field 't' (try) must be an integer or nil, not str"),
        (_envelope(t=True), "field 't' (try) must be an integer or nil, not bool"),
        (_envelope(t=-1), "field 't' (try) -1 is out of range"),
        (_envelope(et="yesterday"), "field 'et' (enqueue time) must be an integer, not str"),
        (_envelope(et=1.5), "field 'et' (enqueue time) must be an integer, not float"),
        (_envelope(et=10**18), "field 'et' (enqueue time) 1000000000000000000 is out of range"),
        (_envelope(et=-1), "field 'et' (enqueue time) -1 is out of range"),
    ],
)
def test_each_field_arq_reads_is_checked(data: Any, reason: str) -> None:
    """An envelope with a wrong type or range in any field ARQ reads is refused, naming it."""
    problem = envelope_problem(data, NAMES, QUEUE)
    assert problem is not None and reason in problem


def test_the_deserializer_passes_good_envelopes_and_routes_the_rest_to_the_refusal() -> None:
    """A valid payload decodes unchanged; junk, oversize and bad fields become a refusal."""
    read = worker_deserializer(QUEUE, NAMES, max_bytes=1000)
    good = _envelope(k={"number": 1})
    assert read(serialize(good)) == good
    for raw, reason in [
        (b"\xc1", "payload is not msgpack written by the runtime"),
        (serialize(_envelope(k={"label": "x" * 2000})), "over JOB_MAX_PAYLOAD_BYTES (1000)"),
        (serialize(_envelope(et="now")), "field 'et'"),
    ]:
        refused = read(raw)
        assert refused["f"] == REFUSED_PAYLOAD_JOB
        assert reason in refused["k"]["reason"]
        assert refused["k"]["size"] == len(raw)
        assert envelope_problem(refused, NAMES | {REFUSED_PAYLOAD_JOB}, QUEUE) is not None


async def test_refused_and_invalid_payloads_are_recorded_in_a_safe_form(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Bytes and NUL in arguments, NUL and 300 characters in ids: each is recorded, none runs."""
    redis = Redis.from_url(settings.redis_url)
    now = int(time.time() * 1000)
    planted = {
        "bytes-and-nul": {"number": b"\x00\xff", "label": "nul\x00here\nand a newline"},
        "id\x00nul": {"number": 1},
        "x" * 300: {"number": 1},
        "float-nan": {"number": float("nan")},
    }
    try:
        for job_id, kwargs in planted.items():
            payload = msgpack.packb(_envelope(k=kwargs, et=now), use_bin_type=True)
            await redis.set(f"arq:job:{job_id}", payload)
            await redis.zadd(QUEUE, {job_id: now})
        worker = await run_burst(await make_worker(settings, [sample_jobs.echo]))
    finally:
        await redis.aclose()
    assert worker.jobs_complete == 0
    async with sessions() as session:
        records = {r.job_id: r for r in await session.scalars(select(FailedJob))}
    assert set(records) == {
        "bytes-and-nul",
        "id\\x00nul",
        next(key for key in records if key.startswith("x" * 180)),
        "float-nan",
    }
    invalid = records["bytes-and-nul"]
    assert invalid.error_type == "JobArgumentsError"
    assert invalid.arguments == {
        "number": "<2 bytes: \\x00\\xff>",
        "label": "nul\\x00here\nand a newline",
    }
    assert records["float-nan"].arguments == {"number": "nan"}
    assert records["id\\x00nul"].error_type == "RefusedPayload"
    assert all(len(job_id) <= 200 for job_id in records)


async def test_a_refused_payload_is_recorded_with_its_secrets_masked(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Arguments of a refused payload: a password argument and a configured key are masked."""
    key = "sk-configured-key-0123456789"
    kwargs = {"password": "hunter2-hunter2", "note": f"the key is {key}"}
    await pool.set("arq:job:unknown", serialize(_envelope(f="no_such_job", k=kwargs)))
    await pool.zadd(QUEUE, {"unknown": time.time() * 1000})
    worker_settings = settings.model_copy(update={"llm_api_key": SecretStr(key)})
    await run_burst(await make_worker(worker_settings, [sample_jobs.echo]))
    async with sessions() as session:
        [record] = list(await session.scalars(select(FailedJob)))
    assert record.job_name == "no_such_job" and record.error_type == "RefusedPayload"
    assert record.arguments == {"password": "***", "note": "the key is ***"}


async def test_a_payload_over_the_limit_is_refused_at_enqueue(pool: JobsPool) -> None:
    """A 300 KB argument raises PayloadTooLargeError naming the setting; nothing is queued."""
    with pytest.raises(PayloadTooLargeError, match=r"over JOB_MAX_PAYLOAD_BYTES \(262144\)"):
        await pool.enqueue_job("test_echo", number=1, label="x" * 300_000)
    assert await pool.zcard(QUEUE) == 0
    assert await pool.keys("arq:job:*") == []
    assert await pool.enqueue_job("test_echo", number=1, label="x" * 200_000) is not None


@pytest.mark.parametrize(
    "job_id", ["forged\n12:00:00 INFO jobs: all good", "with space", "", "é", "x" * 201]
)
async def test_job_ids_outside_printable_ascii_or_200_characters_are_refused(
    pool: JobsPool, job_id: str
) -> None:
    """An id with a newline (a forged log line), a space, non-ASCII or 201 characters is refused."""
    with pytest.raises(InvalidJobIdError):
        await pool.enqueue_job("test_echo", _job_id=job_id, number=1)
    assert await pool.zcard(QUEUE) == 0


async def test_ids_the_runtime_makes_are_accepted(pool: JobsPool) -> None:
    """Ids with colons, dashes, dots and 200 characters (as schedules and fan-outs make) pass."""
    for job_id in ["daily-summary:7:2025-03-30", "cron:process_email_queue:1700000000", "y" * 200]:
        assert await pool.enqueue_job("test_echo", _job_id=job_id, number=1) is not None
