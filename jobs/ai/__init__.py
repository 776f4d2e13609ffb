"""The ai family: ``arq jobs.ai.WorkerSettings``.

Jobs: ``schedule_ai_tasks`` (every minute: claim due AI tasks, enqueue their runs) and
``run_ai_task(task_id, scheduled_for)`` (run one task's instruction with the LLM and the
user's tools, and record the run).
"""

from jobs.ai.tasks import run_ai_task, schedule_ai_tasks
from jobs.worker import Cron, FamilyWorkerSettings

__all__ = ["WorkerSettings", "run_ai_task", "schedule_ai_tasks"]


class WorkerSettings(FamilyWorkerSettings, family="ai"):
    """ARQ settings of the ai family's workers."""

    functions = [schedule_ai_tasks, run_ai_task]
    cron_jobs = [Cron(schedule_ai_tasks, "* * * * *")]
