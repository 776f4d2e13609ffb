"""Alembic migrations go up and down (the rollback plan) on both databases."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobs.db import Base, create_engine, downgrade, upgrade
from jobs.db.layout import plain_metadata
from jobs.db.migrate import current_revision, head_revision
from jobs.settings import Settings
from tests.conftest import POSTGRES_ADMIN_DSN, POSTGRES_TEST_DB

MIGRATIONS_DB = f"{POSTGRES_TEST_DB}_migrations"


@pytest.fixture
async def empty_engine(settings: Settings) -> AsyncEngine:
    """An engine on a database with no tables at all."""
    if settings.resolved_database_url.startswith("postgresql"):
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        await admin.execute(f"DROP DATABASE IF EXISTS {MIGRATIONS_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {MIGRATIONS_DB}")
        await admin.close()
        engine = create_engine(
            settings,
            url=settings.resolved_database_url.replace(f"/{POSTGRES_TEST_DB}", f"/{MIGRATIONS_DB}"),
        )
    else:
        engine = create_engine(settings)
    yield engine  # type: ignore[misc]
    await engine.dispose()


async def table_names(engine: AsyncEngine) -> set[str]:
    """The tables in the database, without Alembic's own."""
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    return names - {"jobs_alembic_version"}


MODEL_TABLES = {table.name for table in Base.metadata.sorted_tables}


async def schema_diff(connection: AsyncConnection) -> list[Any]:
    """What Alembic finds different between the models and the database's default schema."""
    return await connection.run_sync(
        lambda c: compare_metadata(
            MigrationContext.configure(
                c, opts={"compare_type": True, "version_table": "jobs_alembic_version"}
            ),
            plain_metadata(Base.metadata),
        )
    )


async def test_upgrade_matches_models_and_downgrade_removes_everything(
    empty_engine: AsyncEngine,
) -> None:
    """Upgrade creates the models' schema, downgrade to base drops it, upgrade works again."""
    assert await current_revision(empty_engine) is None
    await upgrade(empty_engine)
    assert await current_revision(empty_engine) == head_revision()
    async with empty_engine.connect() as connection:
        diff = await schema_diff(connection)
    assert diff == []
    assert await table_names(empty_engine) == MODEL_TABLES
    await downgrade(empty_engine)
    assert await current_revision(empty_engine) is None
    assert await table_names(empty_engine) == set()
    await upgrade(empty_engine)
    assert await table_names(empty_engine) == MODEL_TABLES


async def test_worker_refuses_to_start_on_an_unmigrated_database(
    empty_engine: AsyncEngine, settings: Settings, redis_url: str
) -> None:
    """A worker whose database is behind the code stops at start-up, saying to migrate."""
    from jobs import ConfigurationError
    from tests import sample_jobs
    from tests.conftest import make_worker

    unmigrated = settings.model_copy(
        update={"database_url": empty_engine.url.render_as_string(hide_password=False)}
    )
    worker = await make_worker(unmigrated, [sample_jobs.echo])
    with pytest.raises(ConfigurationError, match="run `python -m jobs migrate`"):
        await worker.main()
    await worker.close()
