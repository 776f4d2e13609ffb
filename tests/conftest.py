"""Shared fixtures: real Redis, PostgreSQL and SQLite, a real SMTP server, and a test worker."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from arq.worker import Worker
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.client import JobsPool, create_pool
from jobs.db import Base, create_engine, create_session_factory, upgrade
from jobs.settings import Settings, load_settings
from jobs.telemetry import configure_telemetry
from jobs.worker import Cron, worker_options
from tests.llm_server import FakeLlm
from tests.smtp_server import SmtpServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Where the test services are, overridable so that the suite runs against any Redis and
# PostgreSQL, and several checkouts can run their suites at once on one machine.
REDIS_HOST = os.environ.get("JOBS_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("JOBS_TEST_REDIS_PORT", "6379"))
REDIS_TEST_DB = int(os.environ.get("JOBS_TEST_REDIS_DB", "7"))
POSTGRES_HOST = os.environ.get("JOBS_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("JOBS_TEST_PG_PORT", "5432"))
POSTGRES_USER = os.environ.get("JOBS_TEST_PG_USER", "postgres")
POSTGRES_PASSWORD = os.environ.get("JOBS_TEST_PG_PASSWORD", "")
#: A database that exists on any PostgreSQL; the test databases are created from it.
POSTGRES_ADMIN_DB = os.environ.get("JOBS_TEST_PG_ADMIN_DB", "postgres")
POSTGRES_TEST_DB = os.environ.get("JOBS_TEST_PG_DB", "jobs_test")
_LOGIN = POSTGRES_USER + (f":{quote(POSTGRES_PASSWORD, safe='')}" if POSTGRES_PASSWORD else "")
POSTGRES_SERVER = f"{_LOGIN}@{POSTGRES_HOST}:{POSTGRES_PORT}"
POSTGRES_ADMIN_DSN = f"postgresql://{POSTGRES_SERVER}/{POSTGRES_ADMIN_DB}"
POSTGRES_URL = f"postgresql+asyncpg://{POSTGRES_SERVER}/{POSTGRES_TEST_DB}"
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"

SPANS = InMemorySpanExporter()
METRICS_READER = InMemoryMetricReader()


def service_missing(message: str) -> None:
    """Fail in CI, skip elsewhere, saying what is wrong and what to do."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def postgres_unavailable(error: BaseException) -> str:
    """What is wrong with the test PostgreSQL, from the error of connecting to it."""
    where = f"PostgreSQL at {POSTGRES_HOST}:{POSTGRES_PORT}"
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate in ("28P01", "28000"):
        return (
            f"{where} refused user {POSTGRES_USER!r} ({error}); "
            "set JOBS_TEST_PG_USER and JOBS_TEST_PG_PASSWORD"
        )
    if sqlstate == "3D000":
        return (
            f"{where} has no database {POSTGRES_ADMIN_DB!r} to create the test database from; "
            "set JOBS_TEST_PG_ADMIN_DB to one that exists"
        )
    if isinstance(error, OSError):
        return (
            f"{where} is not running ({type(error).__name__}: {error}); start it with "
            "`pg_ctlcluster <version> main start`, or set JOBS_TEST_PG_HOST and JOBS_TEST_PG_PORT"
        )
    return f"{where} cannot be used for the tests ({type(error).__name__}: {error})"


def pytest_configure(config: pytest.Config) -> None:
    """Install the tracer provider once, exporting to memory so tests can read spans."""
    configure_telemetry(
        load_settings(otel_traces_exporter="none", otel_metrics_exporter="none"),
        "tests",
        extra_processors=[SimpleSpanProcessor(SPANS)],
        extra_metric_readers=[METRICS_READER],
    )


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans finished during the test."""
    SPANS.clear()
    yield SPANS
    SPANS.clear()


async def _ping_redis() -> bool:
    client = Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except OSError:
        return False
    except Exception:
        return False
    finally:
        await client.aclose()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A flushed, dedicated Redis database for this test."""
    if not await _ping_redis():
        service_missing(
            f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable; start it with "
            "`redis-server --daemonize yes`, or set JOBS_TEST_REDIS_HOST and JOBS_TEST_REDIS_PORT"
        )
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield REDIS_URL
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def pool(redis_url: str, settings: Settings) -> AsyncIterator[JobsPool]:
    """The producers' pool on the test Redis database."""
    jobs_pool = await create_pool(settings)
    yield jobs_pool
    await jobs_pool.aclose()


async def _prepare_postgres() -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {POSTGRES_TEST_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {POSTGRES_TEST_DB}")
    finally:
        await admin.close()
    engine = create_engine(load_settings(), url=POSTGRES_URL)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> str | None:
    """Create and migrate the test database once; what is wrong if that cannot be done."""
    try:
        asyncio.run(_prepare_postgres())
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        return postgres_unavailable(error)
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str | None
) -> str:
    """The database of a DB-facing test: a SQLite file, or the PostgreSQL test database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    if postgres_database is not None:
        service_missing(postgres_database)
    return POSTGRES_URL


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on a free local port."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def llm_server() -> Iterator[FakeLlm]:
    """A scripted OpenAI-compatible chat completions server on a free local port."""
    with FakeLlm() as server:
        yield server


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, smtp_server: SmtpServer, redis_url: str
) -> Settings:
    """Settings pointing at the test Redis database, database and SMTP server."""
    return load_settings(
        data_dir=tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        worker_poll_delay=0.02,
        email_retry_base_seconds=60.0,
        otel_traces_exporter="none",
        otel_metrics_exporter="none",
    )


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database."""
    db = create_engine(settings)
    if db.dialect.name == "sqlite":
        await upgrade(db)
    else:
        async with db.begin() as connection:
            tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    await db.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory on the test database."""
    return create_session_factory(engine)


async def make_worker(
    settings: Settings,
    functions: Sequence[Any],
    *,
    family: str = "email",
    crons: Sequence[Cron] = (),
    **overrides: Any,
) -> Worker:
    """An in-process ARQ worker built as ``arq jobs.<family>.WorkerSettings`` builds it.

    It gets its own Redis pool (a worker closes its pool when it stops).
    """
    options = worker_options(family, settings, functions, crons)
    options.pop("redis_settings")
    options.update(
        redis_pool=await create_pool(settings),
        ctx={"settings": settings},
        burst=True,
        handle_signals=False,
        poll_delay=settings.worker_poll_delay,
    )
    options.update(overrides)
    return Worker(**options)


async def run_burst(worker: Worker) -> Worker:
    """Run ``worker`` until its queue is empty, then shut it down."""
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker
