"""The ai family: ``arq jobs.ai.WorkerSettings``.

Jobs: ``schedule_ai_tasks`` (every minute: claim due AI tasks, enqueue their runs) and
``run_ai_task(task_id, scheduled_for)`` (run one task's instruction with the LLM and the
user's tools, and record the run). A backend creating or changing a task sets its
``next_run_at`` with :func:`next_run_of`.
"""

from jobs.ai.scheduling import next_run_of
from jobs.ai.tasks import run_ai_task, schedule_ai_tasks
from jobs.worker import Cron, FamilyWorkerSettings

__all__ = ["WorkerSettings", "next_run_of", "run_ai_task", "schedule_ai_tasks"]


class WorkerSettings(FamilyWorkerSettings, family="ai"):
    """ARQ settings of the ai family's workers."""

    functions = [schedule_ai_tasks, run_ai_task]
    cron_jobs = [Cron(schedule_ai_tasks, "* * * * *")]
