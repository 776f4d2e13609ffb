"""Alembic environment: runs migrations on the connection handed over by jobs.db.migrate."""

from alembic import context

import jobs.db  # noqa: F401 - registers every model on Base.metadata
from jobs.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with `python -m jobs migrate`, which supplies the connection"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
