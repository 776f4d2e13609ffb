"""Background jobs of the personal-assistant backend, on ARQ.

Producers: ``pool = await jobs.create_pool()`` then ``await pool.enqueue_job(name, **kwargs)``
(or :func:`jobs.web.lifespan` and :func:`jobs.web.enqueue_job` in a FastAPI app).
Workers: ``arq jobs.<family>.WorkerSettings``.

The names below are imported when first used, so ``python -m jobs --help`` and the health check
of a container do not pay for ARQ, SQLAlchemy and OpenTelemetry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jobs.errors import (
    ConfigurationError,
    JobArgumentsError,
    JobsError,
    PermanentJobError,
    TransientJobError,
    UnknownJobError,
    UnstorableTextError,
)

if TYPE_CHECKING:
    from jobs.client import JobsPool, create_pool
    from jobs.clients import WorkerClients
    from jobs.context import JobContext
    from jobs.families import declare_family
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
    "WorkerClients",
    "all_jobs",
    "create_pool",
    "declare_family",
    "get_job",
    "get_settings",
    "job",
    "load_settings",
]

#: Where each lazily imported public name lives.
_LAZY = {
    "JobsPool": "jobs.client",
    "create_pool": "jobs.client",
    "JobContext": "jobs.context",
    "declare_family": "jobs.families",
    "WorkerClients": "jobs.clients",
    "JobSpec": "jobs.registry",
    "all_jobs": "jobs.registry",
    "get_job": "jobs.registry",
    "job": "jobs.registry",
    "NO_RETRY": "jobs.retry",
    "RetryPolicy": "jobs.retry",
    "Settings": "jobs.settings",
    "get_settings": "jobs.settings",
    "load_settings": "jobs.settings",
    "Cron": "jobs.worker",
    "FamilyWorkerSettings": "jobs.worker",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazy ones included."""
    return sorted(set(globals()) | set(__all__))
