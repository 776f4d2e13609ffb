"""Sessions, sync accounts and data, AI tasks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 15:58:15.908242
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jobs.db.migration_support import owns_users, users_foreign_key

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ai_tasks",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("run_at", Timestamp, nullable=True),
        sa.Column("cron_expression", sa.String(length=120), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum("active", "paused", "done", name="aitaskstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("next_run_at", Timestamp, nullable=True),
        sa.Column("last_run_at", Timestamp, nullable=True),
        sa.Column("last_result", sa.Text(), nullable=True),
        sa.Column("failures_in_row", sa.Integer(), nullable=False),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        *users_foreign_key("ai_tasks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_tasks")),
    )
    op.create_index(op.f("ix_ai_tasks_next_run_at"), "ai_tasks", ["next_run_at"])
    op.create_index(op.f("ix_ai_tasks_state"), "ai_tasks", ["state"])
    op.create_index(op.f("ix_ai_tasks_user_id"), "ai_tasks", ["user_id"])

    op.create_table(
        "google_accounts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("google_email", sa.String(length=320), nullable=False),
        sa.Column("access_token_encrypted", sa.Text(), nullable=True),
        sa.Column("refresh_token_encrypted", sa.Text(), nullable=True),
        sa.Column("token_expires_at", Timestamp, nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "needs_reconsent",
                "error",
                name="accountstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_synced_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        *users_foreign_key("google_accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_accounts")),
    )
    op.create_index(op.f("ix_google_accounts_user_id"), "google_accounts", ["user_id"])

    op.create_table(
        "notion_integrations",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("workspace_name", sa.String(length=200), nullable=False),
        sa.Column("token_encrypted", sa.Text(), nullable=True),
        sa.Column("watermark", Timestamp, nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "needs_reconsent",
                "error",
                name="accountstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_synced_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        *users_foreign_key("notion_integrations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notion_integrations")),
    )
    op.create_index(op.f("ix_notion_integrations_user_id"), "notion_integrations", ["user_id"])

    if owns_users():
        op.create_table(
            "user_sessions",
            sa.Column("id", BigId, nullable=False),
            sa.Column("user_id", BigId, nullable=False),
            sa.Column("token_hash", sa.String(length=128), nullable=False),
            sa.Column("created_at", Timestamp, nullable=False),
            sa.Column("expires_at", Timestamp, nullable=False),
            *users_foreign_key("user_sessions"),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
            sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
        )
        op.create_index(op.f("ix_user_sessions_expires_at"), "user_sessions", ["expires_at"])
        op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"])

    op.create_table(
        "ai_task_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("task_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("scheduled_for", Timestamp, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("tool_calls", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("tokens_used", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["ai_tasks.id"],
            name=op.f("fk_ai_task_runs_task_id_ai_tasks"),
            ondelete="CASCADE",
        ),
        *users_foreign_key("ai_task_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_task_runs")),
        sa.UniqueConstraint(
            "task_id", "scheduled_for", name=op.f("uq_ai_task_runs_task_id_scheduled_for")
        ),
    )
    op.create_index(op.f("ix_ai_task_runs_task_id"), "ai_task_runs", ["task_id"])
    op.create_index(op.f("ix_ai_task_runs_user_id"), "ai_task_runs", ["user_id"])

    op.create_table(
        "calendar_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("calendar_id", sa.String(length=300), nullable=False),
        sa.Column("remote_id", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("html_link", sa.Text(), nullable=True),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("starts_at", Timestamp, nullable=True),
        sa.Column("ends_at", Timestamp, nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("recurring_event_id", sa.String(length=300), nullable=True),
        sa.Column("original_start", sa.String(length=64), nullable=True),
        sa.Column("remote_updated_at", Timestamp, nullable=True),
        sa.Column("synced_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["google_accounts.id"],
            name=op.f("fk_calendar_events_account_id_google_accounts"),
            ondelete="CASCADE",
        ),
        *users_foreign_key("calendar_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_events")),
        sa.UniqueConstraint(
            "account_id",
            "calendar_id",
            "remote_id",
            name=op.f("uq_calendar_events_account_id_calendar_id_remote_id"),
        ),
    )
    op.create_index(op.f("ix_calendar_events_account_id"), "calendar_events", ["account_id"])
    op.create_index(op.f("ix_calendar_events_start_date"), "calendar_events", ["start_date"])
    op.create_index(op.f("ix_calendar_events_starts_at"), "calendar_events", ["starts_at"])
    op.create_index(op.f("ix_calendar_events_user_id"), "calendar_events", ["user_id"])

    op.create_table(
        "google_calendars",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("calendar_id", sa.String(length=300), nullable=False),
        sa.Column("sync_token", sa.Text(), nullable=True),
        sa.Column("last_synced_at", Timestamp, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["google_accounts.id"],
            name=op.f("fk_google_calendars_account_id_google_accounts"),
            ondelete="CASCADE",
        ),
        *users_foreign_key("google_calendars"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_calendars")),
        sa.UniqueConstraint(
            "account_id", "calendar_id", name=op.f("uq_google_calendars_account_id_calendar_id")
        ),
    )
    op.create_index(op.f("ix_google_calendars_account_id"), "google_calendars", ["account_id"])
    op.create_index(op.f("ix_google_calendars_user_id"), "google_calendars", ["user_id"])

    op.create_table(
        "notion_pages",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("integration_id", BigId, nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("parent", sa.JSON(), nullable=True),
        sa.Column("created_time", Timestamp, nullable=True),
        sa.Column("last_edited_time", Timestamp, nullable=True),
        sa.Column("synced_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["notion_integrations.id"],
            name=op.f("fk_notion_pages_integration_id_notion_integrations"),
            ondelete="CASCADE",
        ),
        *users_foreign_key("notion_pages"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notion_pages")),
        sa.UniqueConstraint(
            "integration_id", "remote_id", name=op.f("uq_notion_pages_integration_id_remote_id")
        ),
    )
    op.create_index(op.f("ix_notion_pages_integration_id"), "notion_pages", ["integration_id"])
    op.create_index(op.f("ix_notion_pages_last_edited_time"), "notion_pages", ["last_edited_time"])
    op.create_index(op.f("ix_notion_pages_user_id"), "notion_pages", ["user_id"])


def downgrade() -> None:
    op.drop_table("notion_pages")
    op.drop_table("google_calendars")
    op.drop_table("calendar_events")
    op.drop_table("ai_task_runs")
    if owns_users():
        op.drop_table("user_sessions")
    op.drop_table("notion_integrations")
    op.drop_table("google_accounts")
    op.drop_table("ai_tasks")
