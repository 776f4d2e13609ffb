"""FastAPI integration: a lifespan that owns the jobs pool, a dependency, and ``/health``.

::

    app = FastAPI(lifespan=jobs.web.lifespan)
    app.include_router(jobs.web.health_router)      # GET /health for load balancers

    @app.post("/reminders")
    async def remind(pool: JobsPoolDep) -> dict[str, str]:
        job = await pool.enqueue_job("send_email", to=..., subject=..., text=...)
        return {"job_id": job.job_id}
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from arq.jobs import Job
from sqlalchemy import text

try:
    from fastapi import APIRouter, Depends, FastAPI, Request
    from fastapi.responses import JSONResponse
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError("jobs.web needs FastAPI: pip install 'assistant-jobs[web]'") from error

from jobs.client import JobsPool, create_pool
from jobs.db.engine import create_engine
from jobs.families import known_families
from jobs.logs import install_secret_masking
from jobs.monitor import family_health
from jobs.settings import Settings, get_settings

__all__ = [
    "JobsPoolDep",
    "enqueue_job",
    "get_jobs_pool",
    "health_router",
    "lifespan",
    "make_lifespan",
]

#: Seconds each dependency may take to answer a health check.
HEALTH_TIMEOUT = 2.0


def make_lifespan(settings: Settings | None = None) -> Any:
    """A FastAPI lifespan that opens the jobs pool (and a database engine for ``/health``).

    It also masks the jobs' secrets on every log handler configured by then (uvicorn's too).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        install_secret_masking(resolved)
        pool = await create_pool(resolved)
        engine = create_engine(resolved)
        app.state.jobs_pool = pool
        app.state.jobs_engine = engine
        try:
            yield
        finally:
            await pool.aclose()
            await engine.dispose()

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


async def _check(probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, HEALTH_TIMEOUT)
    except Exception as error:
        return f"down: {type(error).__name__}"
    return "ok"


async def _database_ping(request: Request) -> None:
    async with request.app.state.jobs_engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


health_router = APIRouter()


@health_router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Redis, the database and each family's worker freshness; 503 if anything is down."""
    pool = get_jobs_pool(request)
    body: dict[str, Any] = {
        "redis": await _check(pool.ping()),
        "database": await _check(_database_ping(request)),
        "families": {},
    }
    if body["redis"] == "ok":
        for family in known_families():
            state = await family_health(pool, family)
            body["families"][family] = {
                "workers": state.workers,
                "last_heartbeat_age_s": state.last_heartbeat_age_s,
                "status": "ok" if state.alive else "down: no live worker",
            }
    statuses = [body["redis"], body["database"]]
    statuses += [f["status"] for f in body["families"].values()]
    healthy = all(status == "ok" for status in statuses)
    body["status"] = "ok" if healthy else "degraded"
    return JSONResponse(body, status_code=200 if healthy else 503)
