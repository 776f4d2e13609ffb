"""Calendars discovered from each account's calendar list; accounts in error retried later.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    for table in ("google_accounts", "notion_integrations"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(_counter("failures"))
            batch.add_column(
                sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True)
            )
    with op.batch_alter_table("google_accounts") as batch:
        batch.add_column(sa.Column("calendar_list_sync_token", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("sync_generation", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("google_calendars") as batch:
        batch.add_column(sa.Column("summary", sa.Text(), nullable=False, server_default=""))
        batch.add_column(_counter("failures"))


def downgrade() -> None:
    with op.batch_alter_table("google_calendars") as batch:
        batch.drop_column("failures")
        batch.drop_column("summary")
    with op.batch_alter_table("google_accounts") as batch:
        batch.drop_column("sync_generation")
        batch.drop_column("calendar_list_sync_token")
    for table in ("notion_integrations", "google_accounts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("next_attempt_at")
            batch.drop_column("failures")
