"""The sync family: ``arq jobs.sync.WorkerSettings``.

Jobs: ``sync_calendar_events`` (hourly) and ``sync_notion_pages`` (every 2 hours) fan out one
``sync_calendar_account`` / ``sync_notion_integration`` job per active account, which can also
be enqueued on demand (e.g. right after the user connects an account).

Modules: ``tokens`` (encrypted tokens), ``transport`` (rate-limited, retrying requests),
``google`` and ``notion`` (the APIs), ``calendar`` and ``pages`` (the sync walks), ``store``
(bulk upserts), ``accounts`` (account state), ``jobs`` (the job functions).
"""

from jobs.sync.jobs import (
    sync_calendar_account,
    sync_calendar_events,
    sync_notion_integration,
    sync_notion_pages,
)
from jobs.sync.tokens import TokenCipher, cipher_from_settings, generate_key
from jobs.worker import Cron, FamilyWorkerSettings

__all__ = [
    "TokenCipher",
    "WorkerSettings",
    "cipher_from_settings",
    "generate_key",
    "sync_calendar_account",
    "sync_calendar_events",
    "sync_notion_integration",
    "sync_notion_pages",
]


class WorkerSettings(FamilyWorkerSettings, family="sync"):
    """ARQ settings of the sync family's workers."""

    functions = [
        sync_calendar_events,
        sync_notion_pages,
        sync_calendar_account,
        sync_notion_integration,
    ]
    cron_jobs = [
        Cron(sync_calendar_events, "0 * * * *"),
        Cron(sync_notion_pages, "30 */2 * * *"),
    ]
    # the stored tokens cannot be read without the key: refuse to start instead
    settings_check = staticmethod(cipher_from_settings)
