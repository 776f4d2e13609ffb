"""Users, outbound e-mails and failed jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jobs.db.migration_support import owns_users, users_foreign_key

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    if owns_users():
        op.create_table(
            "users",
            sa.Column("id", BigId, nullable=False),
            sa.Column("email", sa.String(320), nullable=False),
            sa.Column("display_name", sa.String(200), nullable=False),
            sa.Column("timezone", sa.String(64), nullable=False),
            sa.Column("daily_summary_enabled", sa.Boolean(), nullable=False),
            sa.Column("created_at", Timestamp, server_default=sa.func.now(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
            sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        )
    op.create_table(
        "outbound_emails",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sending",
                "sent",
                "failed",
                name="emailstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("claimed_until", Timestamp, nullable=True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("sent_at", Timestamp, nullable=True),
        *users_foreign_key("outbound_emails"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_emails")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbound_emails_dedupe_key")),
    )
    op.create_index("ix_outbound_emails_due", "outbound_emails", ["status", "next_attempt_at"])
    op.create_index(op.f("ix_outbound_emails_user_id"), "outbound_emails", ["user_id"])
    op.create_table(
        "failed_jobs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("job_name", sa.String(200), nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("failed_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_jobs")),
    )
    op.create_index(op.f("ix_failed_jobs_failed_at"), "failed_jobs", ["failed_at"])
    op.create_index(op.f("ix_failed_jobs_job_id"), "failed_jobs", ["job_id"])
    op.create_index(op.f("ix_failed_jobs_job_name"), "failed_jobs", ["job_name"])


def downgrade() -> None:
    op.drop_table("failed_jobs")
    op.drop_table("outbound_emails")
    if owns_users():
        op.drop_table("users")
