"""Alembic environment: runs migrations on the connection handed over by jobs.db.migrate.

Tables are created unqualified on a connection whose ``search_path`` is ``DATABASE_SCHEMA``
(created if missing), so the migrations themselves stay schema-agnostic.
"""

from alembic import context
from sqlalchemy import text

import jobs.db  # noqa: F401 - registers every model on Base.metadata
from jobs.db.base import Base
from jobs.db.layout import DatabaseLayout, migrated_object_filter, plain_metadata

connection = context.config.attributes.get("connection")
layout = context.config.attributes.get("layout")
if connection is None or not isinstance(layout, DatabaseLayout):
    raise RuntimeError(
        "run migrations with `python -m jobs migrate`, which supplies the connection"
    )

if layout.schema is not None:
    quoted = connection.dialect.identifier_preparer.quote_schema(layout.schema)
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
    connection.execute(text(f"SET LOCAL search_path TO {quoted}"))

context.configure(
    connection=connection,
    target_metadata=plain_metadata(Base.metadata),
    include_object=migrated_object_filter(layout),
    version_table=layout.version_table,
    version_table_schema=layout.schema,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
