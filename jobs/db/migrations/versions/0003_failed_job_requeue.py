"""Failed jobs remember their span and whether they were requeued.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("failed_jobs") as batch:
        batch.add_column(sa.Column("span_id", sa.String(16), nullable=True))
        batch.add_column(sa.Column("requeued_job_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("failed_jobs") as batch:
        batch.drop_column("requeued_at")
        batch.drop_column("requeued_job_id")
        batch.drop_column("span_id")
