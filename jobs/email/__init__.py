"""The email family: ``arq jobs.email.WorkerSettings``.

Jobs: ``send_email`` and ``deliver_email`` (immediate delivery), ``process_email_queue``
(the outbox sweep, every 5 minutes) and ``send_daily_email_summary`` (every 15 minutes: each
user's summary at 08:00 in the user's own time zone).
"""

from jobs.email.outbox import queue_email
from jobs.email.summary import Section, SummaryWindow, summary_section
from jobs.email.tasks import (
    deliver_email,
    process_email_queue,
    send_daily_email_summary,
    send_email,
)
from jobs.worker import Cron, FamilyWorkerSettings

__all__ = [
    "Section",
    "SummaryWindow",
    "WorkerSettings",
    "deliver_email",
    "process_email_queue",
    "queue_email",
    "send_daily_email_summary",
    "send_email",
    "summary_section",
]


class WorkerSettings(FamilyWorkerSettings, family="email"):
    """ARQ settings of the email family's workers."""

    functions = [send_email, deliver_email, process_email_queue, send_daily_email_summary]
    cron_jobs = [
        Cron(process_email_queue, "*/5 * * * *"),
        Cron(send_daily_email_summary, "*/15 * * * *"),
    ]
