"""Apply and roll back the Alembic migrations from code (``python -m jobs migrate``).

The migrations run in the engine's layout (:mod:`jobs.db.layout`): in ``DATABASE_SCHEMA``
(created if missing) with the revision kept in ``DATABASE_VERSION_TABLE``, so a database that
holds another application's tables and Alembic history keeps both untouched.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, Table, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.db.layout import USER_RELATION_COLUMNS, DatabaseLayout, layout_of
from jobs.errors import ConfigurationError

__all__ = [
    "LEGACY_VERSION_TABLE",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "require_current_schema",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Alembic's default version table, where databases migrated before it was settable keep it.
LEGACY_VERSION_TABLE = "alembic_version"


def alembic_config(
    connection: Connection | None = None, layout: DatabaseLayout | None = None
) -> Config:
    """An Alembic configuration for the project's migrations, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["layout"] = layout
    return config


def _migration_context(connection: Connection, layout: DatabaseLayout) -> MigrationContext:
    return MigrationContext.configure(
        connection,
        opts={"version_table": layout.version_table, "version_table_schema": layout.schema},
    )


def _adopt_legacy_version_table(connection: Connection, layout: DatabaseLayout) -> None:
    """Move the revision of a database migrated before the version table was settable.

    Only when ``alembic_version`` holds exactly one revision, it is one of ours, and the jobs'
    tables are there: an ``alembic_version`` of another application is never touched.
    """
    if layout.version_table == LEGACY_VERSION_TABLE:
        return
    inspector = inspect(connection)
    if inspector.has_table(layout.version_table, schema=layout.schema) or not all(
        inspector.has_table(name, schema=layout.schema)
        for name in (LEGACY_VERSION_TABLE, "failed_jobs")
    ):
        return
    legacy = Table(
        LEGACY_VERSION_TABLE, MetaData(), Column("version_num", String(32)), schema=layout.schema
    )
    revisions = list(connection.scalars(select(legacy.c.version_num)))
    scripts = ScriptDirectory.from_config(alembic_config())
    ours = {script.revision for script in scripts.walk_revisions()}
    if len(revisions) != 1 or revisions[0] not in ours:
        return
    _migration_context(connection, layout).stamp(scripts, revisions[0])
    legacy.drop(connection)


def _upgrade(connection: Connection, layout: DatabaseLayout, revision: str) -> None:
    _adopt_legacy_version_table(connection, layout)
    command.upgrade(alembic_config(connection, layout), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (the newest by default)."""
    layout = layout_of(engine)
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: _upgrade(c, layout, revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Migrate the database down to ``revision`` (no table of the jobs left by default)."""
    layout = layout_of(engine)
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c, layout), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an unmigrated database."""
    layout = layout_of(engine)
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda c: _migration_context(c, layout).get_current_revision()
        )


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _missing_user_columns(connection: Connection, layout: DatabaseLayout) -> list[str]:
    inspector = inspect(connection)
    schema = layout.resolved_users_schema
    problems = []
    for relation, required in USER_RELATION_COLUMNS.items():
        try:
            columns = {column["name"] for column in inspector.get_columns(relation, schema)}
        except NoSuchTableError:
            columns = set()
        if not columns:
            if relation == "users":  # user_sessions is optional: without it none are cleaned
                problems.append(f"{relation} (no such table or view)")
        elif missing := [name for name in required if name not in columns]:
            problems.append(f"{relation} lacks {', '.join(missing)}")
    return problems


async def require_current_schema(engine: AsyncEngine) -> None:
    """Raise ConfigurationError unless the database is ready for the jobs.

    It must be migrated to the newest revision and, when the backend owns the users, offer
    the users relations with the columns the jobs read.
    """
    current, head = await current_revision(engine), head_revision()
    url = engine.url.render_as_string(hide_password=True)
    if current != head:
        raise ConfigurationError(
            f"database {url} is at revision {current or 'none'}, expected {head}: "
            "run `python -m jobs migrate`"
        )
    layout = layout_of(engine)
    if layout.owns_users:
        return
    async with engine.connect() as connection:
        problems = await connection.run_sync(lambda c: _missing_user_columns(c, layout))
    if problems:
        where = layout.resolved_users_schema or "the default schema"
        raise ConfigurationError(
            f"USERS_SCHEMA: the users relations in {where} of {url} do not fit: "
            + "; ".join(problems)
            + " (create views mapping your columns, see docs/embedding.md)"
        )
