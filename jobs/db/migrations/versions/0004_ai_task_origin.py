"""AI tasks created by a run remember which run and call created them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_tasks") as batch:
        batch.add_column(sa.Column("origin_key", sa.String(200), nullable=True))
        batch.create_unique_constraint(op.f("uq_ai_tasks_origin_key"), ["origin_key"])


def downgrade() -> None:
    with op.batch_alter_table("ai_tasks") as batch:
        batch.drop_constraint(op.f("uq_ai_tasks_origin_key"), type_="unique")
        batch.drop_column("origin_key")
