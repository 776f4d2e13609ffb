"""Connected accounts are unique per user: one Google account per address, one Notion workspace.

Connecting the same account again (a backend retrying, a user re-consenting) updates that
account instead of adding a second. Notion integrations remember their workspace's id.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("google_accounts") as batch:
        batch.create_unique_constraint(
            op.f("uq_google_accounts_user_id_google_email"), ["user_id", "google_email"]
        )
    with op.batch_alter_table("notion_integrations") as batch:
        batch.add_column(sa.Column("workspace_id", sa.String(64), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_notion_integrations_user_id_workspace_id"), ["user_id", "workspace_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("notion_integrations") as batch:
        batch.drop_constraint(op.f("uq_notion_integrations_user_id_workspace_id"), type_="unique")
        batch.drop_column("workspace_id")
    with op.batch_alter_table("google_accounts") as batch:
        batch.drop_constraint(op.f("uq_google_accounts_user_id_google_email"), type_="unique")
