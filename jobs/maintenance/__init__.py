"""The maintenance family: ``arq jobs.maintenance.WorkerSettings``.

Jobs: ``optimize_database`` (weekly, Sunday 03:00 in ``SCHEDULE_TIMEZONE``) and
``cleanup_old_sessions`` (daily at 04:00).
"""

from jobs.maintenance.tasks import cleanup_old_sessions, optimize_database
from jobs.worker import Cron, FamilyWorkerSettings

__all__ = ["WorkerSettings", "cleanup_old_sessions", "optimize_database"]


class WorkerSettings(FamilyWorkerSettings, family="maintenance"):
    """ARQ settings of the maintenance family's workers."""

    functions = [optimize_database, cleanup_old_sessions]
    cron_jobs = [
        Cron(optimize_database, "0 3 * * 0"),
        Cron(cleanup_old_sessions, "0 4 * * *"),
    ]
