"""Workers use the backend's own engine, session factory and HTTP client when it hands them over."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import ConfigurationError, JobsPool
from jobs.settings import Settings, load_settings
from tests import backend_clients, sample_jobs
from tests.conftest import make_worker, run_burst
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import SYNC_JOBS, connect_google, sync_settings

pytestmark = pytest.mark.usefixtures("engine")

FACTORY = "tests.backend_clients:worker_clients"


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogleCalendar]:
    """A running fake Google Calendar."""
    async with FakeGoogleCalendar() as fake:
        yield fake


async def test_sync_jobs_use_the_backends_client_and_engine_with_spans_under_the_job(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
    spans: InMemorySpanExporter,
) -> None:
    """Google sees the backend's header, its hook sees each request, spans nest under the job."""
    async with FakeNotion() as notion:
        sync = sync_settings(settings, google, notion, worker_clients_factory=FACTORY)
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    google.put_event("primary", summary="from the backend's client")
    job = await pool.enqueue_job("sync_calendar_account", account_id=account_id)
    assert job is not None
    worker = await make_worker(sync, SYNC_JOBS, family="sync")
    await run_burst(worker)
    assert (await job.result(timeout=1))["status"] == "synced"

    api_requests = [h for h in google.log.headers if h]
    assert api_requests
    assert all(h.get("x-backend") == "assistant-backend" for h in api_requests)
    assert len(backend_clients.hooked_paths) >= len(api_requests)
    assert "/calendar/v3/users/me/calendarList" in backend_clients.hooked_paths
    assert any(path.endswith("/events") for path in backend_clients.hooked_paths)
    backend_engine = backend_clients.made_engines[-1]
    assert worker.ctx["engine"].sync_engine.pool is backend_engine.sync_engine.pool
    assert worker.ctx["http"] is backend_clients.made_clients[-1]
    assert backend_clients.made_clients[-1].is_closed  # closed by the backend, at shut-down

    [consumer] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    children = [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == consumer.context.span_id
    ]
    http = [s for s in children if s.kind is SpanKind.CLIENT and s.name.startswith("GET")]
    sql = [s for s in children if "calendar_events" in str(s.attributes.get("db.statement", ""))]
    assert http and sql


async def test_a_backends_session_factory_is_used_without_expiring_objects_on_commit(
    pool: JobsPool, settings: Settings
) -> None:
    """Jobs get the backend's session class, copied with expire_on_commit=False."""
    given = settings.model_copy(
        update={"worker_clients_factory": "tests.backend_clients:worker_sessions"}
    )
    job = await pool.enqueue_job("test_session_kind")
    assert job is not None
    await run_burst(await make_worker(given, [sample_jobs.session_kind]))
    assert await job.result(timeout=1) == {"class": "BackendSession", "expire_on_commit": False}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_factory_that_cannot_be_used_stops_the_worker_naming_the_setting(
    settings: Settings,
) -> None:
    """A missing module and a callable yielding no WorkerClients both refuse start-up."""
    for path, message in (
        ("tests.no_such_module:worker_clients", "cannot load 'tests.no_such_module:worker_c"),
        ("tests.backend_clients:not_a_factory", "must return an async context manager"),
    ):
        broken = settings.model_copy(update={"worker_clients_factory": path})
        worker = await make_worker(broken, [sample_jobs.echo])
        with pytest.raises(ConfigurationError, match=f"WORKER_CLIENTS_FACTORY: .*{message}"):
            await worker.main()
        await worker.close()
    with pytest.raises(ConfigurationError, match="WORKER_CLIENTS_FACTORY: 'x' is not module:"):
        load_settings(worker_clients_factory="x")
