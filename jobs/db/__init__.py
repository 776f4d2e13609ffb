"""The backend's database: engine and sessions, models, and migrations.

Importing this package registers every model on ``Base.metadata``.
"""

from jobs.db.ai_models import AiTask, AiTaskRun, AiTaskState
from jobs.db.base import Base, utcnow
from jobs.db.engine import (
    bind_engine,
    bind_session,
    create_engine,
    create_session_factory,
    is_postgres,
)
from jobs.db.layout import DatabaseLayout
from jobs.db.migrate import downgrade, upgrade
from jobs.db.models import EmailStatus, FailedJob, OutboundEmail, User, UserSession
from jobs.db.outbox import queue_email
from jobs.db.sync_models import (
    AccountState,
    CalendarEvent,
    GoogleAccount,
    GoogleCalendar,
    NotionIntegration,
    NotionPage,
)
from jobs.db.upsert import insert_ignoring_conflicts

__all__ = [
    "AccountState",
    "AiTask",
    "AiTaskRun",
    "AiTaskState",
    "Base",
    "CalendarEvent",
    "DatabaseLayout",
    "EmailStatus",
    "FailedJob",
    "GoogleAccount",
    "GoogleCalendar",
    "NotionIntegration",
    "NotionPage",
    "OutboundEmail",
    "User",
    "UserSession",
    "bind_engine",
    "bind_session",
    "create_engine",
    "create_session_factory",
    "downgrade",
    "insert_ignoring_conflicts",
    "is_postgres",
    "queue_email",
    "upgrade",
    "utcnow",
]
