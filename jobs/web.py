"""FastAPI integration: a lifespan that owns the jobs pool, and a dependency that hands it out.

::

    app = FastAPI(lifespan=jobs.web.lifespan)

    @app.post("/reminders")
    async def remind(pool: JobsPoolDep) -> dict[str, str]:
        job = await pool.enqueue_job("send_email", to=..., subject=..., text=...)
        return {"job_id": job.job_id}
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from arq.jobs import Job

try:
    from fastapi import Depends, FastAPI, Request
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError("jobs.web needs FastAPI: pip install 'assistant-jobs[web]'") from error

from jobs.client import JobsPool, create_pool
from jobs.settings import Settings

__all__ = ["JobsPoolDep", "enqueue_job", "get_jobs_pool", "lifespan", "make_lifespan"]


def make_lifespan(settings: Settings | None = None) -> Any:
    """A FastAPI lifespan that opens the jobs pool at start-up and closes it at shut-down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings)
        app.state.jobs_pool = pool
        try:
            yield
        finally:
            await pool.aclose()

    return lifespan


#: The lifespan for apps configured from the environment.
lifespan = make_lifespan()


def get_jobs_pool(request: Request) -> JobsPool:
    """The dependency: the app's :class:`JobsPool`."""
    pool = getattr(request.app.state, "jobs_pool", None)
    if not isinstance(pool, JobsPool):
        raise RuntimeError("the jobs pool is not open: create the app with jobs.web.lifespan")
    return pool


JobsPoolDep = Annotated[JobsPool, Depends(get_jobs_pool)]


async def enqueue_job(request: Request, name: str, /, **kwargs: Any) -> Job | None:
    """Enqueue job ``name`` through the app's pool (a shortcut for handlers)."""
    return await get_jobs_pool(request).enqueue_job(name, **kwargs)
