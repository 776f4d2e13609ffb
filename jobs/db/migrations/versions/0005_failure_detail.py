"""Failed jobs keep the root cause of their error; failed e-mails the time they failed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("failed_jobs") as batch:
        batch.add_column(sa.Column("error_cause", sa.String(500), nullable=True))
    with op.batch_alter_table("outbound_emails") as batch:
        batch.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(op.f("ix_outbound_emails_failed_at"), ["failed_at"])


def downgrade() -> None:
    with op.batch_alter_table("outbound_emails") as batch:
        batch.drop_index(op.f("ix_outbound_emails_failed_at"))
        batch.drop_column("failed_at")
    with op.batch_alter_table("failed_jobs") as batch:
        batch.drop_column("error_cause")
