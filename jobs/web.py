"""FastAPI integration: a lifespan that owns the jobs pool, dependencies, and two routers.

::

    app = FastAPI(lifespan=jobs.web.lifespan)
    app.include_router(jobs.web.health_router)   # /health/ready for load balancers, …
    app.include_router(jobs.web.job_control_router(authorize=require_admin), prefix="/admin")

    @app.post("/reminders")
    async def remind(pool: JobsPoolDep) -> dict[str, str]:
        job = await pool.enqueue_job("send_email", to=..., subject=..., text=...)
        return {"job_id": job.job_id}

``health_router`` is in :mod:`jobs.web_health`, ``job_control_router`` in
:mod:`jobs.web_control`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

try:
    from fastapi import FastAPI, Request
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError("jobs.web needs FastAPI: pip install 'assistant-jobs[web]'") from error

from jobs.client import create_pool
from jobs.control import JobHandle
from jobs.db.engine import bind_engine, create_engine, create_session_factory
from jobs.logs import install_secret_masking
from jobs.settings import Settings, get_settings
from jobs.web_control import job_control_router
from jobs.web_deps import (
    JobsPoolDep,
    JobsSessionsDep,
    get_jobs_engine,
    get_jobs_pool,
    get_jobs_sessions,
)
from jobs.web_health import health_router

__all__ = [
    "JobsPoolDep",
    "JobsSessionsDep",
    "enqueue_job",
    "get_jobs_engine",
    "get_jobs_pool",
    "get_jobs_sessions",
    "health_router",
    "job_control_router",
    "lifespan",
    "make_lifespan",
]


def make_lifespan(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> Any:
    """A FastAPI lifespan that opens the jobs pool and a database engine (health, failed jobs).

    With ``engine`` (the backend's own) it uses that one, bound to the jobs' schemas, and
    leaves disposing of it to the backend. It also masks the jobs' secrets on every log
    handler configured by then (uvicorn's too).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        install_secret_masking(resolved)
        pool = await create_pool(resolved)
        jobs_engine = create_engine(resolved) if engine is None else bind_engine(engine, resolved)
        app.state.jobs_pool = pool
        app.state.jobs_engine = jobs_engine
        app.state.jobs_sessions = create_session_factory(jobs_engine)
        try:
            yield
        finally:
            await pool.aclose()
            if engine is None:
                await jobs_engine.dispose()

    return lifespan


#: The lifespan for apps configured from the environment.
lifespan = make_lifespan()


async def enqueue_job(request: Request, name: str, /, **kwargs: Any) -> JobHandle | None:
    """Enqueue job ``name`` through the app's pool (a shortcut for handlers)."""
    return await get_jobs_pool(request).enqueue_job(name, **kwargs)
