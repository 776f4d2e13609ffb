"""The backend's database: engine and sessions, models, and migrations."""

from jobs.db.engine import (
    create_engine,
    create_session_factory,
    insert_ignoring_conflicts,
    is_postgres,
)
from jobs.db.migrate import downgrade, upgrade
from jobs.db.models import Base, EmailStatus, FailedJob, OutboundEmail, User, utcnow

__all__ = [
    "Base",
    "EmailStatus",
    "FailedJob",
    "OutboundEmail",
    "User",
    "create_engine",
    "create_session_factory",
    "downgrade",
    "insert_ignoring_conflicts",
    "is_postgres",
    "upgrade",
    "utcnow",
]
