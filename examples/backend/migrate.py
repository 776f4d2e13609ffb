"""Migrating the example backend: its own history first, then the jobs' beside it.

``python -m examples.backend.migrate`` does both with the settings of the environment.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import jobs.db
from jobs import Settings, get_settings

__all__ = ["migrate_backend", "migrate_everything"]

MIGRATIONS = Path(__file__).with_name("migrations")


async def migrate_backend(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the backend's own migrations (kept in Alembic's default ``alembic_version``)."""

    def upgrade(connection: object) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)


async def migrate_everything(settings: Settings | None = None) -> None:
    """The backend's migrations, then the jobs' (in their schema and version table)."""
    settings = settings or get_settings()
    engine = create_async_engine(settings.resolved_database_url)
    try:
        await migrate_backend(engine)
        await jobs.db.upgrade(jobs.db.bind_engine(engine, settings))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(migrate_everything())
