"""Where the jobs' tables live in a database they may share with a backend.

The models are declared in two placeholder schemas: :data:`JOBS_SCHEMA` for the jobs' own
tables and :data:`USERS_SCHEMA` for ``users`` and ``user_sessions``. Every engine the jobs use
carries a ``schema_translate_map`` (:meth:`DatabaseLayout.translate_map`) that turns the
placeholders into the real schemas from the settings:

- ``DATABASE_SCHEMA`` — the PostgreSQL schema of the jobs' tables (unset: the connection's
  default schema; SQLite has no schemas and ignores it);
- ``USERS_SCHEMA`` — unset: the jobs own ``users`` and ``user_sessions`` beside their other
  tables (the standalone mode). Set: both are the backend's relations (tables or views) in that
  schema, which the migrations never create, alter or reference with a foreign key.

Because only the placeholders are translated, the map can ride on the backend's own engine or
session without touching the backend's tables. Migrations create unqualified tables on a
connection whose ``search_path`` starts with ``DATABASE_SCHEMA``, and keep their revision in
``DATABASE_VERSION_TABLE`` in that schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BLANK_SCHEMA, MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from jobs.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

    from jobs.settings import Settings

__all__ = [
    "JOBS_SCHEMA",
    "LAYOUT_OPTION",
    "USERS_SCHEMA",
    "USER_RELATIONS",
    "USER_RELATION_COLUMNS",
    "DatabaseLayout",
    "layout_of",
    "migrated_object_filter",
    "plain_metadata",
    "qualified_name",
]

#: Placeholder schema of the jobs' own tables in the models.
JOBS_SCHEMA = "__jobs__"
#: Placeholder schema of the users and their sessions in the models.
USERS_SCHEMA = "__jobs_users__"
#: Execution option under which an engine carries its :class:`DatabaseLayout`.
LAYOUT_OPTION = "jobs_layout"
#: The relations the jobs read from the backend when it owns its users.
USER_RELATIONS = ("users", "user_sessions")
#: The columns each of those relations must offer (a view can rename the backend's columns).
USER_RELATION_COLUMNS = {
    "users": ("id", "email", "display_name", "timezone", "daily_summary_enabled"),
    "user_sessions": ("id", "user_id", "expires_at"),
}


@dataclass(frozen=True)
class DatabaseLayout:
    """The schemas and Alembic version table of the jobs in one database."""

    dialect: str
    schema: str | None = None
    users_schema: str | None = None
    version_table: str = "jobs_alembic_version"

    @classmethod
    def from_settings(cls, settings: Settings, dialect: str) -> DatabaseLayout:
        """The layout ``settings`` ask for on a database of ``dialect``."""
        postgres = dialect == "postgresql"
        return cls(
            dialect=dialect,
            schema=settings.database_schema if postgres else None,
            users_schema=settings.users_schema,
            version_table=settings.database_version_table,
        )

    @property
    def owns_users(self) -> bool:
        """Whether the migrations create ``users`` and ``user_sessions`` (standalone mode)."""
        return self.users_schema is None

    @property
    def resolved_users_schema(self) -> str | None:
        """The schema the users relations are read from (None: the default one)."""
        if self.owns_users:
            return self.schema
        return self.users_schema if self.dialect == "postgresql" else None

    def translate_map(self) -> dict[str | None, str | None]:
        """The ``schema_translate_map`` turning the models' placeholders into real schemas."""
        return {JOBS_SCHEMA: self.schema, USERS_SCHEMA: self.resolved_users_schema}

    def execution_options(self) -> dict[str, Any]:
        """What an engine needs to run the jobs' statements: the map and this layout."""
        return {"schema_translate_map": self.translate_map(), LAYOUT_OPTION: self}

    def is_own_table(self, table: Table) -> bool:
        """Whether the jobs own ``table`` (the users relations only in standalone mode)."""
        return table.schema != USERS_SCHEMA or self.owns_users


def layout_of(bind: AsyncEngine | AsyncConnection | Connection) -> DatabaseLayout:
    """The layout an engine or connection was configured with by :mod:`jobs.db.engine`."""
    if isinstance(bind, AsyncConnection):
        options = bind.sync_connection.get_execution_options() if bind.sync_connection else {}
    else:
        options = bind.get_execution_options()
    layout = options.get(LAYOUT_OPTION)
    if not isinstance(layout, DatabaseLayout):
        raise ConfigurationError(
            "this engine does not know where the jobs' tables are: create it with "
            "jobs.db.create_engine(settings) or wrap yours with jobs.db.bind_engine(engine)"
        )
    return layout


def qualified_name(layout: DatabaseLayout, table: Table) -> str:
    """``table``'s real name for hand-written SQL: ``"schema"."name"`` or ``"name"``."""
    schema = layout.translate_map().get(table.schema, table.schema)
    quoted = f'"{table.name}"'
    return f'"{schema}".{quoted}' if schema else quoted


def plain_metadata(metadata: MetaData) -> MetaData:
    """A copy of ``metadata`` without placeholder schemas, as the migrations create it.

    What Alembic compares with a database (autogenerate, and the tests).
    """
    plain = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(
            plain,
            schema=cast(str, None),  # None: the plain metadata's schema, which is none
            referred_schema_fn=lambda *_: cast(str, BLANK_SCHEMA),  # references: no schema
        )
    return plain


def migrated_object_filter(layout: DatabaseLayout) -> Any:
    """An Alembic ``include_object`` hook leaving out what the migrations do not create.

    When the backend owns its users: their relations, and foreign keys to them.
    """

    def include(item: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
        if layout.owns_users:
            return True
        if kind == "table":
            return name not in USER_RELATIONS
        if kind == "foreign_key_constraint" and not reflected:
            return item.referred_table.name not in USER_RELATIONS
        table = getattr(item, "table", None)
        return table is None or table.name not in USER_RELATIONS

    return include
