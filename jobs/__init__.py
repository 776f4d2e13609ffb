"""Background jobs of the personal-assistant backend, on ARQ.

Producers: ``pool = await jobs.create_pool()`` then ``await pool.enqueue_job(name, **kwargs)``
(or :func:`jobs.web.lifespan` and :func:`jobs.web.enqueue_job` in a FastAPI app).
Workers: ``arq jobs.<family>.WorkerSettings``.
"""

from jobs.client import JobsPool, create_pool
from jobs.context import JobContext
from jobs.errors import (
    ConfigurationError,
    JobArgumentsError,
    JobsError,
    PermanentJobError,
    TransientJobError,
    UnknownJobError,
    UnstorableTextError,
)
from jobs.registry import JobSpec, all_jobs, get_job, job
from jobs.retry import NO_RETRY, RetryPolicy
from jobs.settings import Settings, get_settings, load_settings
from jobs.worker import Cron, FamilyWorkerSettings

__all__ = [
    "NO_RETRY",
    "ConfigurationError",
    "Cron",
    "FamilyWorkerSettings",
    "JobArgumentsError",
    "JobContext",
    "JobSpec",
    "JobsError",
    "JobsPool",
    "PermanentJobError",
    "RetryPolicy",
    "Settings",
    "TransientJobError",
    "UnknownJobError",
    "UnstorableTextError",
    "all_jobs",
    "create_pool",
    "get_job",
    "get_settings",
    "job",
    "load_settings",
]
