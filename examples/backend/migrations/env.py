"""The example backend's Alembic environment: its own history, in ``alembic_version``."""

from alembic import context

from examples.backend.models import BackendBase

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=BackendBase.metadata)
with context.begin_transaction():
    context.run_migrations()
