"""The service API a backend calls from its handlers, in its own database transaction.

Every function takes the caller's ``AsyncSession`` (and, where a job follows, the app's
:class:`jobs.JobsPool`), validates its input first — :class:`InvalidInputError` naming each bad
field, nothing written — and writes only through that session: the caller commits or rolls
back. Jobs that act on what was written are enqueued after the commit
(:mod:`jobs.api.after_commit`); the rows are the truth, so a lost enqueue is made up by the
periodic jobs. What a backend may retry is idempotent: connecting an account twice updates it,
an e-mail or a task with the same key is queued or created once, disconnecting or deleting
twice answers that nothing was left.

- accounts: :func:`connect_google_account`, :func:`disconnect_google_account`,
  :func:`connect_notion_integration`, :func:`disconnect_notion_integration`,
  :func:`request_sync`;
- AI tasks: :func:`create_ai_task`, :func:`update_ai_task`, :func:`pause_ai_task`,
  :func:`resume_ai_task`, :func:`delete_ai_task`;
- e-mail: :func:`queue_transactional_email`.
"""

from jobs.api.accounts import Connection, Disconnection
from jobs.api.after_commit import enqueue_after_commit, wait_for_enqueues
from jobs.api.ai_tasks import (
    AiTaskChanges,
    AiTaskInfo,
    NewAiTask,
    create_ai_task,
    delete_ai_task,
    pause_ai_task,
    resume_ai_task,
    update_ai_task,
)
from jobs.api.emails import EmailMessage, QueuedEmail, queue_transactional_email
from jobs.api.errors import ApiError, InvalidInputError, NotFoundError
from jobs.api.google import (
    GoogleTokens,
    connect_google_account,
    disconnect_google_account,
)
from jobs.api.notion import (
    NotionGrant,
    connect_notion_integration,
    disconnect_notion_integration,
)
from jobs.api.sync import SyncRequest, request_sync

__all__ = [
    "AiTaskChanges",
    "AiTaskInfo",
    "ApiError",
    "Connection",
    "Disconnection",
    "EmailMessage",
    "GoogleTokens",
    "InvalidInputError",
    "NewAiTask",
    "NotFoundError",
    "NotionGrant",
    "QueuedEmail",
    "SyncRequest",
    "connect_google_account",
    "connect_notion_integration",
    "create_ai_task",
    "delete_ai_task",
    "disconnect_google_account",
    "disconnect_notion_integration",
    "enqueue_after_commit",
    "pause_ai_task",
    "queue_transactional_email",
    "request_sync",
    "resume_ai_task",
    "update_ai_task",
    "wait_for_enqueues",
]
