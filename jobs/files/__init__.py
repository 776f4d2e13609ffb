"""The files family: ``arq jobs.files.WorkerSettings``.

Jobs: ``cleanup_temp_files`` (daily at 02:00 in ``SCHEDULE_TIMEZONE``), ``backup_user_data``
(weekly, Sunday 01:00: one ``backup_one_user`` job per user) and ``backup_one_user``.
Restoring is ``python -m jobs restore <archive>`` (:func:`restore_backup`).
"""

from jobs.files.archive import BackupError
from jobs.files.backup import backup_user, list_backups
from jobs.files.cleanup import CleanupReport, sweep_temp_dir
from jobs.files.ownership import owned_tables
from jobs.files.restore import RestoreReport, restore_backup, verify_backup
from jobs.files.tasks import backup_one_user, backup_user_data, cleanup_temp_files
from jobs.worker import Cron, FamilyWorkerSettings

__all__ = [
    "BackupError",
    "CleanupReport",
    "RestoreReport",
    "WorkerSettings",
    "backup_one_user",
    "backup_user",
    "backup_user_data",
    "cleanup_temp_files",
    "list_backups",
    "owned_tables",
    "restore_backup",
    "sweep_temp_dir",
    "verify_backup",
]


class WorkerSettings(FamilyWorkerSettings, family="files"):
    """ARQ settings of the files family's workers."""

    functions = [cleanup_temp_files, backup_user_data, backup_one_user]
    cron_jobs = [
        Cron(cleanup_temp_files, "0 2 * * *"),
        Cron(backup_user_data, "0 1 * * 0"),
    ]
