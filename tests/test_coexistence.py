"""The jobs share a database with a backend: own schema, own Alembic history, the backend's users.

The "backend" here has its own ``users`` table (with its own column names), login sessions, a
``failed_jobs`` table of its own and an Alembic history in ``alembic_version``. The jobs live in
schema ``jobs`` and read the backend's users through the documented views.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from sqlalchemy import delete, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs import ConfigurationError, JobsPool
from jobs.db import (
    Base,
    OutboundEmail,
    create_engine,
    create_session_factory,
    downgrade,
    queue_email,
    upgrade,
)
from jobs.db.migrate import current_revision, head_revision, require_current_schema
from jobs.email.daily import queue_due_summaries
from jobs.files import backup_user, restore_backup
from jobs.maintenance import cleanup_old_sessions
from jobs.settings import Settings, load_settings
from tests.conftest import (
    POSTGRES_ADMIN_DSN,
    POSTGRES_TEST_DB,
    POSTGRES_URL,
    make_worker,
    run_burst,
    service_missing,
)
from tests.test_migrations import schema_diff

COEXIST_DB = f"{POSTGRES_TEST_DB}_coexist"
#: 13:00 in Berlin: a user there is due for the daily summary.
BERLIN_NOON = dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC)
COEXIST_URL = POSTGRES_URL.replace(f"/{POSTGRES_TEST_DB}", f"/{COEXIST_DB}")

BACKEND_TABLES = [
    "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, email_address TEXT NOT NULL UNIQUE,"
    " full_name TEXT NOT NULL, tz TEXT NOT NULL DEFAULT 'UTC',"
    " wants_digest BOOLEAN NOT NULL DEFAULT TRUE, password_hash TEXT NOT NULL)",
    "CREATE TABLE sessions (id BIGSERIAL PRIMARY KEY,"
    " user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " expires TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE failed_jobs (id SERIAL PRIMARY KEY, what TEXT NOT NULL)",
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('backend_0007')",
    "INSERT INTO users (email_address, full_name, tz, wants_digest, password_hash) VALUES"
    " ('ann@example.com', 'Ann', 'Europe/Berlin', TRUE, 'h1'),"
    " ('bob@example.com', 'Bob', 'UTC', FALSE, 'h2')",
    "INSERT INTO sessions (user_id, expires) VALUES"
    " (1, now() - interval '1 day'), (1, now() + interval '1 day')",
    "INSERT INTO failed_jobs (what) VALUES ('the backend''s own record')",
]
# docs/embedding.md's recipe: views in the jobs' schema giving the backend's columns our names.
USER_VIEWS = [
    "CREATE SCHEMA jobs",
    "CREATE VIEW jobs.users AS SELECT id, email_address AS email, full_name AS display_name,"
    " tz AS timezone, wants_digest AS daily_summary_enabled FROM public.users",
    "CREATE VIEW jobs.user_sessions AS SELECT id, user_id, expires AS expires_at"
    " FROM public.sessions",
]
SNAPSHOT_QUERIES = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default"
    " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "users": "SELECT * FROM public.users ORDER BY id",
    "sessions": "SELECT * FROM public.sessions ORDER BY id",
    "failed_jobs": "SELECT * FROM public.failed_jobs ORDER BY id",
    "alembic_version": "SELECT * FROM public.alembic_version",
}


async def _recreate(*statements: str) -> None:
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        service_missing(f"PostgreSQL ({error})", "pg_ctlcluster <version> main start")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {COEXIST_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {COEXIST_DB}")
    finally:
        await admin.close()
    backend = await asyncpg.connect(COEXIST_URL.replace("+asyncpg", ""))
    try:
        for statement in statements:
            await backend.execute(statement)
    finally:
        await backend.close()


async def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """The backend's schema (columns, constraints, indexes) and data, as plain tuples."""
    backend = await asyncpg.connect(COEXIST_URL.replace("+asyncpg", ""))
    try:
        return {
            name: [tuple(row) for row in await backend.fetch(query)]
            for name, query in SNAPSHOT_QUERIES.items()
        }
    finally:
        await backend.close()


async def relations(engine: AsyncEngine, schema: str) -> dict[str, str]:
    """The tables (``r``) and views (``v``) of ``schema``."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT relname, relkind::text FROM pg_class"
                " WHERE relnamespace = CAST(:schema AS regnamespace) AND relkind IN ('r', 'v')"
            ),
            {"schema": schema},
        )
        return {name: kind for name, kind in rows}


@pytest.fixture
async def backend_database(redis_url: str) -> str:
    """A PostgreSQL database holding the backend's tables, data, history and user views."""
    await _recreate(*BACKEND_TABLES, *USER_VIEWS)
    return COEXIST_URL


@pytest.fixture
def embedded_settings(settings: Settings, backend_database: str) -> Settings:
    """The settings of jobs embedded in the backend's database."""
    return settings.model_copy(
        update={"database_url": backend_database, "database_schema": "jobs", "users_schema": "jobs"}
    )


@pytest.fixture
async def embedded_engine(embedded_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine of the embedded jobs, migrated."""
    engine = create_engine(embedded_settings)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_migrations_leave_the_backends_tables_data_and_history_untouched(
    embedded_settings: Settings,
) -> None:
    """Up and down again: the backend's schema, rows and Alembic revision never change."""
    before = await snapshot()
    engine = create_engine(embedded_settings)
    try:
        await upgrade(engine)
        assert await snapshot() == before
        assert await current_revision(engine) == head_revision()
        ours = await relations(engine, "jobs")
        own_tables = {t.name for t in Base.metadata.sorted_tables} - {"users", "user_sessions"}
        assert ours == {
            **dict.fromkeys(own_tables | {"jobs_alembic_version"}, "r"),
            "users": "v",
            "user_sessions": "v",
        }
        async with engine.connect() as connection:
            foreign_keys_to_users = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
                    " AND confrelid = 'public.users'::regclass"
                    " AND connamespace = 'jobs'::regnamespace"
                )
            )
        assert foreign_keys_to_users == 0
        await require_current_schema(engine)

        await downgrade(engine)
        assert await snapshot() == before
        assert await relations(engine, "jobs") == {
            "users": "v",
            "user_sessions": "v",
            "jobs_alembic_version": "r",  # empty, as Alembic leaves it at base
        }
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_jobs_read_the_backends_users_and_clean_its_sessions_through_the_views(
    embedded_settings: Settings, embedded_engine: AsyncEngine, pool: JobsPool
) -> None:
    """The daily summary goes to the backend's opted-in user; its expired session is deleted."""
    sessions = create_session_factory(embedded_engine)
    counts = await queue_due_summaries(sessions, now=BERLIN_NOON, fallback_zone=ZoneInfo("UTC"))
    assert counts["queued"] == 1
    async with sessions() as session:
        queued = list(
            await session.execute(select(OutboundEmail.user_id, OutboundEmail.to_address))
        )
    assert queued == [(1, "ann@example.com")]

    job = await pool.enqueue_job("cleanup_old_sessions")
    assert job is not None
    await run_burst(
        await make_worker(embedded_settings, [cleanup_old_sessions], family="maintenance")
    )
    assert (await job.result(timeout=1))["sessions_deleted"] == 1
    after = await snapshot()
    assert len(after["sessions"]) == 1
    assert after["failed_jobs"] == [(1, "the backend's own record")]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_users_view_without_the_needed_columns_stops_the_worker_naming_them(
    settings: Settings,
) -> None:
    """A ``users`` view lacking display_name and timezone refuses start-up, naming both."""
    await _recreate(
        *BACKEND_TABLES,
        "CREATE SCHEMA jobs",
        "CREATE VIEW jobs.users AS SELECT id, email_address AS email,"
        " wants_digest AS daily_summary_enabled FROM public.users",
    )
    broken = settings.model_copy(
        update={"database_url": COEXIST_URL, "database_schema": "jobs", "users_schema": "jobs"}
    )
    engine = create_engine(broken)
    try:
        await upgrade(engine)
        with pytest.raises(ConfigurationError, match="users lacks display_name, timezone"):
            await require_current_schema(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_standalone_tables_in_their_own_schema_match_the_models_and_go_down(
    settings: Settings, redis_url: str
) -> None:
    """With only DATABASE_SCHEMA set, every table (users too) lives in it, up and down."""
    await _recreate(*BACKEND_TABLES)
    before = await snapshot()
    own = settings.model_copy(update={"database_url": COEXIST_URL, "database_schema": "jobs"})
    engine = create_engine(own)
    try:
        await upgrade(engine)
        tables = {t.name for t in Base.metadata.sorted_tables}
        assert set(await relations(engine, "jobs")) == tables | {"jobs_alembic_version"}
        async with engine.connect() as connection:
            await connection.execute(text("SET search_path TO jobs"))
            diff = await schema_diff(connection)
        assert diff == []
        assert await snapshot() == before
        await downgrade(engine)
        assert await relations(engine, "jobs") == {"jobs_alembic_version": "r"}
        assert await snapshot() == before
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_sqlite_the_backends_users_table_and_history_stay_as_they_were(
    settings: Settings, tmp_path: Path
) -> None:
    """A SQLite backend with ``users`` and ``alembic_version``: migrations create neither."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'backend.db'}"
    embedded = settings.model_copy(update={"database_url": url, "users_schema": "main"})
    engine = create_engine(embedded)
    try:
        async with engine.begin() as connection:
            for statement in (
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL,"
                " display_name TEXT NOT NULL, timezone TEXT NOT NULL,"
                " daily_summary_enabled BOOLEAN NOT NULL, password_hash TEXT NOT NULL)",
                "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
                "INSERT INTO alembic_version VALUES ('backend_0007')",
                "INSERT INTO users VALUES (1, 'ann@example.com', 'Ann', 'UTC', 1, 'h1')",
            ):
                await connection.execute(text(statement))
        await upgrade(engine)
        await require_current_schema(engine)
        async with engine.connect() as connection:
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            user = (await connection.execute(text("SELECT * FROM users"))).one()
            sql = await connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'ai_tasks'")
            )
        assert version == "backend_0007"
        assert tuple(user) == (1, "ann@example.com", "Ann", "UTC", 1, "h1")
        assert "REFERENCES users" not in sql

        sessions = create_session_factory(engine)
        await queue_due_summaries(sessions, now=BERLIN_NOON, fallback_zone=ZoneInfo("UTC"))
        async with sessions() as session:
            assert list(await session.scalars(select(OutboundEmail.to_address))) == [
                "ann@example.com"
            ]
    finally:
        await engine.dispose()


async def test_a_database_migrated_with_alembics_default_version_table_is_adopted(
    settings: Settings, tmp_path: Path
) -> None:
    """Revision in ``alembic_version`` (the old default) moves to the jobs' own version table."""
    if settings.resolved_database_url.startswith("postgresql"):
        await _recreate()
        url = COEXIST_URL
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    old = settings.model_copy(
        update={"database_url": url, "database_version_table": "alembic_version"}
    )
    engine = create_engine(old)
    try:
        await upgrade(engine, "0003")
    finally:
        await engine.dispose()
    engine = create_engine(settings.model_copy(update={"database_url": url}))
    try:
        assert await current_revision(engine) is None
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "alembic_version" not in names
        assert "jobs_alembic_version" in names
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_backup_holds_the_jobs_rows_of_a_backend_user_and_restores_them(
    embedded_engine: AsyncEngine, tmp_path: Path
) -> None:
    """The backend's users row is neither archived nor restored; the jobs' rows of Ann are."""
    sessions = create_session_factory(embedded_engine)
    async with sessions.begin() as session:
        await queue_email(session, to="ann@example.com", subject="hi", text="x", user_id=1)
        await queue_email(session, to="bob@example.com", subject="hi", text="x", user_id=2)
    made = await backup_user(embedded_engine, 1, tmp_path, keep=2)
    assert made["counts"] == {"outbound_emails": 1}
    async with sessions.begin() as session:
        await session.execute(delete(OutboundEmail))
    restored = await restore_backup(embedded_engine, Path(made["path"]))
    assert restored.counts == {"outbound_emails": 1}
    async with sessions() as session:
        assert list(await session.scalars(select(OutboundEmail.to_address))) == ["ann@example.com"]
    assert len((await snapshot())["users"]) == 2


def test_schema_and_table_settings_must_be_plain_identifiers() -> None:
    """``DATABASE_SCHEMA=jobs;drop`` is refused with a message naming the variable."""
    with pytest.raises(ConfigurationError, match="DATABASE_SCHEMA: 'jobs;drop' is not a plain"):
        load_settings(database_schema="jobs;drop")
