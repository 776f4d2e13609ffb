"""What migration scripts ask of the layout they run in (see :mod:`jobs.db.layout`).

When the backend owns its users, the migrations create no ``users`` or ``user_sessions``
table and no foreign key to them::

    if owns_users():
        op.create_table("users", ...)
    op.create_table("ai_tasks", ..., *users_foreign_key("ai_tasks"))
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from jobs.db.layout import DatabaseLayout

__all__ = ["migration_layout", "owns_users", "users_foreign_key"]


def migration_layout() -> DatabaseLayout:
    """The layout of the migration that is running."""
    layout = context.config.attributes.get("layout")
    if not isinstance(layout, DatabaseLayout):
        raise RuntimeError("migrations run through jobs.db.migrate, which supplies the layout")
    return layout


def owns_users() -> bool:
    """Whether this database's ``users`` and ``user_sessions`` are the jobs' own tables."""
    return migration_layout().owns_users


def users_foreign_key(table: str, column: str = "user_id") -> list[sa.ForeignKeyConstraint]:
    """The foreign key from ``table.column`` to ``users.id``, or none when users are not ours."""
    if not owns_users():
        return []
    return [
        sa.ForeignKeyConstraint(
            [column],
            ["users.id"],
            name=op.f(f"fk_{table}_{column}_users"),
            ondelete="CASCADE",
        )
    ]
