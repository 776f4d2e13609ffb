"""Metrics, secrets, failed-job tooling, status and health, observed in-process."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from examples.app import create_app
from jobs import JobsError, JobsPool
from jobs.db import FailedJob, User
from jobs.email import process_email_queue, send_daily_email_summary
from jobs.families import known_families
from jobs.monitor import run_heartbeat
from jobs.operations import failed_command, status_report
from jobs.settings import Settings
from jobs.web import make_lifespan
from tests import sample_jobs
from tests.conftest import METRICS_READER, make_worker, run_burst
from tests.zones import zone_at_local_hour

pytestmark = pytest.mark.usefixtures("engine")


def counter_values(name: str) -> dict[tuple[tuple[str, Any], ...], float]:
    """Current value of every data point of counter ``name``, by its attributes."""
    values: dict[tuple[tuple[str, Any], ...], float] = {}
    data = METRICS_READER.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        values[tuple(sorted(point.attributes.items()))] = point.value
    return values


def processed(job: str, outcome: str) -> float:
    """The jobs.processed counter for one job and outcome."""
    key = tuple(
        sorted(
            {
                "messaging.destination.name": "jobs:queue:email",
                "messaging.arq.job.name": job,
                "jobs.outcome": outcome,
            }.items()
        )
    )
    return counter_values("jobs.processed").get(key, 0.0)


def messaging_key(operation: str, job: str, error_type: str | None = None) -> Any:
    """The attributes of a messaging data point, as ``counter_values`` keys them."""
    attributes = {
        "messaging.system": "arq",
        "messaging.operation.name": operation,
        "messaging.operation.type": operation,
        "messaging.destination.name": "jobs:queue:email",
        "messaging.arq.job.name": job,
    }
    if error_type is not None:
        attributes["error.type"] = error_type
    return tuple(sorted(attributes.items()))


async def test_counters_match_what_the_jobs_did(pool: JobsPool, settings: Settings) -> None:
    """Two retries then success, and a permanent failure, count as success 1, retry 2, failure 1."""
    before = {o: processed("test_flaky", o) for o in ("success", "retry", "failure")}
    broken_before = processed("test_broken", "failure")
    sent_key = messaging_key("send", "test_flaky")
    consumed_key = messaging_key("process", "test_flaky")
    sent_before = counter_values("messaging.client.sent.messages").get(sent_key, 0.0)
    consumed_before = counter_values("messaging.client.consumed.messages").get(consumed_key, 0.0)
    await pool.enqueue_job("test_flaky", failures=2)
    await pool.enqueue_job("test_broken", password="x", note="y")
    worker = await run_burst(await make_worker(settings, [sample_jobs.flaky, sample_jobs.broken]))
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (1, 2, 1)
    after = {o: processed("test_flaky", o) for o in ("success", "retry", "failure")}
    assert {o: after[o] - before[o] for o in after} == {"success": 1, "retry": 2, "failure": 0}
    assert processed("test_broken", "failure") - broken_before == 1
    assert counter_values("messaging.client.sent.messages")[sent_key] - sent_before == 1
    consumed = counter_values("messaging.client.consumed.messages")[consumed_key]
    assert consumed - consumed_before == 3


async def test_a_known_secret_never_reaches_logs_spans_or_failed_jobs(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SMTP_PASSWORD echoed in an error and a `password` argument are masked everywhere."""
    secret = "S3cret-Smtp-Pass-42"
    secretive = settings.model_copy(
        update={"smtp_password": SecretStr(secret), "smtp_username": "u"}
    )
    caplog.set_level(logging.DEBUG)
    await pool.enqueue_job("test_broken", password="arg-secret-77", note=f"login {secret} refused")
    await run_burst(await make_worker(secretive, [sample_jobs.broken]))
    async with sessions() as session:
        [row] = list(await session.scalars(select(FailedJob)))
    assert row.error_message == "cannot handle login *** refused"
    recorded = [str(row.__dict__), caplog.text]
    for span in spans.get_finished_spans():
        recorded.append(str(dict(span.attributes or {})))
        recorded += [str(dict(event.attributes or {})) for event in span.events]
        recorded.append(str(span.status.description))
    for text in recorded:
        assert secret not in text and "arg-secret-77" not in text


async def test_failed_jobs_list_show_requeue_and_purge(
    pool: JobsPool, settings: Settings, spans: InMemorySpanExporter
) -> None:
    """A timed-out job is listed, shown, requeued (linked to its failed trace) once, and purged."""
    await pool.enqueue_job("test_slow")
    await pool.enqueue_job("test_broken", password="p", note="n")
    await run_burst(await make_worker(settings, [sample_jobs.slow, sample_jobs.broken]))
    listing = (await failed_command(settings, "list")).text.splitlines()
    assert len(listing) == 2
    [slow_line] = [line for line in listing if "test_slow" in line]
    [broken_line] = [line for line in listing if "test_broken" in line]
    assert "JobTimeout: try 1 exceeded the 0.2s timeout" in slow_line
    slow_id, broken_id = int(slow_line.split()[0]), int(broken_line.split()[0])
    assert (
        '"job_name": "test_slow"'
        in (await failed_command(settings, "show", record_id=slow_id)).text
    )
    [failed_consumer] = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CONSUMER and s.attributes["messaging.arq.job.name"] == "test_slow"
    ]
    spans.clear()
    report = await failed_command(settings, "requeue", record_id=slow_id)
    new_job_id = report.text.rsplit(" ", 1)[1]
    assert await pool.zscore("jobs:queue:email", new_job_id) is not None
    [requeue_span] = [s for s in spans.get_finished_spans() if s.name == "requeue test_slow"]
    assert requeue_span.links[0].context.span_id == failed_consumer.context.span_id
    with pytest.raises(JobsError, match="was requeued already"):
        await failed_command(settings, "requeue", record_id=slow_id)
    with pytest.raises(JobsError, match=r"secret arguments \(password\)"):
        await failed_command(settings, "requeue", record_id=broken_id)
    assert f"requeued as {new_job_id}" in (await failed_command(settings, "list")).text
    assert (await failed_command(settings, "purge")).text == "deleted 2 failed-job record(s)"


async def test_status_counts_queued_deferred_and_failed(pool: JobsPool, settings: Settings) -> None:
    """`status` shows due and deferred jobs and the last hour's failures per family."""
    await pool.enqueue_job("test_broken", password="p", note="n")
    await run_burst(await make_worker(settings, [sample_jobs.broken]))
    await pool.enqueue_job("test_echo", number=1)
    await pool.enqueue_job("test_echo", number=2, _defer_by=600)
    lines = (await status_report(settings)).text.splitlines()
    [email_line] = [line for line in lines if line.startswith("email ")]
    family, queued, deferred, _oldest, running, failed, workers = email_line.split()
    assert (family, queued, deferred, running, failed, workers) == (
        "email",
        "1",
        "1",
        "0",
        "1",
        "0",
    )


async def test_health_splits_the_apis_readiness_from_the_families_report(
    pool: JobsPool, settings: Settings
) -> None:
    """No worker: /health/ready stays 200, /health/families is 503; both 200 once workers beat."""
    app = create_app(make_lifespan(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            ready, down = await client.get("/health/ready"), await client.get("/health/families")
            only_email = await client.get("/health/families", params={"family": "email"})
            unknown = await client.get("/health/families", params={"family": "emial"})
            beating = settings.model_copy(update={"worker_heartbeat_interval": 0.05})
            beats = [
                asyncio.create_task(run_heartbeat(pool, family, beating))
                for family in known_families()
            ]
            for _ in range(100):  # each family's first beat, within 10 s on a busy machine
                up = await client.get("/health/families")
                if up.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            live, alias = await client.get("/health/live"), await client.get("/health")
            for beat in beats:
                beat.cancel()
            await asyncio.gather(*beats, return_exceptions=True)
    assert ready.status_code == 200
    assert ready.json() == {"redis": "ok", "database": "ok", "status": "ok"}
    assert down.status_code == 503
    assert down.json()["families"]["ai"]["status"] == "down: no live worker"
    assert list(only_email.json()["families"]) == ["email"]
    assert unknown.status_code == 404 and "unknown families: emial" in unknown.json()["detail"]
    assert up.status_code == 200 and up.json()["families"]["email"]["workers"] == 1
    assert (live.status_code, alias.json()) == (200, ready.json())


async def test_jobs_fanned_out_by_a_cron_run_join_its_trace(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    spans: InMemorySpanExporter,
) -> None:
    """The sweep enqueued by the daily summary run is a child of that run's trace."""
    async with sessions.begin() as session:  # a zone where 08:00 has passed, so a summary is due
        session.add(User(email="ann@example.com", timezone=zone_at_local_hour(12)))
    await pool.enqueue_job("send_daily_email_summary")
    await run_burst(await make_worker(settings, [send_daily_email_summary, process_email_queue]))
    consumers = {
        s.attributes["messaging.arq.job.name"]: s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CONSUMER
    }
    summary, sweep = consumers["send_daily_email_summary"], consumers["process_email_queue"]
    assert sweep.context.trace_id == summary.context.trace_id
    [producer] = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.PRODUCER and s.parent and s.parent.span_id == summary.context.span_id
    ]
    assert sweep.parent is not None and sweep.parent.span_id == producer.context.span_id


async def test_failed_list_shows_the_root_cause_of_a_wrapped_driver_error(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A SQLAlchemy-wrapped driver error is listed by the driver's error type and message."""
    await pool.enqueue_job("test_bad_query")
    await run_burst(await make_worker(settings, [sample_jobs.bad_query]))
    [line] = (await failed_command(settings, "list")).text.splitlines()
    async with sessions() as session:
        [row] = list(await session.scalars(select(FailedJob)))
    if settings.resolved_database_url.startswith("postgresql"):
        assert row.error_message.startswith("(sqlalchemy.dialects.postgresql.asyncpg.")
        expected = (
            'ProgrammingError <- UndefinedTableError: relation "no_such_table" does not exist'
        )
    else:
        expected = "OperationalError <- OperationalError: no such table: no_such_table"
    assert row.error_cause == expected.split(" <- ")[1]
    assert line.endswith(expected), line
