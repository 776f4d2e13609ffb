"""The sync family: ``arq jobs.sync.WorkerSettings``.

Jobs: ``sync_calendar_events`` (hourly) and ``sync_notion_pages`` (every 2 hours) fan out one
``sync_calendar_account`` / ``sync_notion_integration`` job per active account, which can also
be enqueued on demand (e.g. right after the user connects an account).

Modules: ``tokens`` (encrypted tokens), ``transport`` (rate-limited, retrying requests),
``google`` and ``notion`` (the APIs), ``calendar_list``, ``calendar``, ``pages`` and
``recheck`` (the sync walks), ``store`` (bulk upserts), ``generation`` (which listing saw a row),
``lease`` (one run per account), ``accounts`` and ``outcome`` (account state and retries),
``google_run`` and ``notion_run`` (one account's run), ``jobs`` (the job functions),
``accounts_command`` (``python -m jobs accounts``), ``settings_check`` (start-up).
"""

from jobs.sync.jobs import (
    sync_calendar_account,
    sync_calendar_events,
    sync_notion_integration,
    sync_notion_pages,
)
from jobs.sync.settings_check import check_sync_settings
from jobs.sync.tokens import TokenCipher, cipher_from_settings, generate_key
from jobs.worker import Cron, FamilyWorkerSettings

__all__ = [
    "TokenCipher",
    "WorkerSettings",
    "check_sync_settings",
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
    # stored tokens cannot be read without the key, nor refreshed without the OAuth client
    settings_check = staticmethod(check_sync_settings)
