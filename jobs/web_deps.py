"""The FastAPI dependencies on what the jobs' lifespan opened: pool, engine, sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.client import JobsPool
from jobs.db.engine import create_session_factory

__all__ = [
    "JobsPoolDep",
    "JobsSessionsDep",
    "get_jobs_engine",
    "get_jobs_pool",
    "get_jobs_sessions",
]


def get_jobs_pool(request: Request) -> JobsPool:
    """The dependency: the app's :class:`JobsPool`."""
    pool = getattr(request.app.state, "jobs_pool", None)
    if not isinstance(pool, JobsPool):
        raise RuntimeError("the jobs pool is not open: create the app with jobs.web.lifespan")
    return pool


JobsPoolDep = Annotated[JobsPool, Depends(get_jobs_pool)]


def get_jobs_engine(request: Request) -> AsyncEngine:
    """The dependency: the engine the app's jobs lifespan opened."""
    engine = getattr(request.app.state, "jobs_engine", None)
    if not isinstance(engine, AsyncEngine):
        raise RuntimeError("the jobs engine is not open: create the app with jobs.web.lifespan")
    return engine


def get_jobs_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """The dependency: a session factory on the jobs' engine (for the failed-jobs table)."""
    sessions = getattr(request.app.state, "jobs_sessions", None)
    if sessions is None:
        sessions = create_session_factory(get_jobs_engine(request))
        request.app.state.jobs_sessions = sessions
    return sessions


JobsSessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_jobs_sessions)]
