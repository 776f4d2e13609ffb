"""Health endpoints: the API's own readiness for load balancers, the families for operators.

- ``GET /health/live`` — the process answers (no I/O): liveness.
- ``GET /health/ready`` (and ``GET /health``) — Redis and the database answer within
  ``HEALTH_TIMEOUT``: what the API itself needs to enqueue. 503 only when one of them is down,
  never because a family's workers are: a stopped AI worker must not take the API out of
  its load balancer.
- ``GET /health/families`` — per family, its live workers and newest heartbeat; 503 when one
  has no live worker. ``?family=email&family=sync`` checks only those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from jobs.families import known_families
from jobs.monitor import family_health
from jobs.web_deps import get_jobs_engine, get_jobs_pool

__all__ = ["HEALTH_TIMEOUT", "health_router"]

#: Seconds each dependency may take to answer a health check.
HEALTH_TIMEOUT = 2.0

health_router = APIRouter()


async def _check(probe: Awaitable[Any]) -> str:
    try:
        await asyncio.wait_for(probe, HEALTH_TIMEOUT)
    except Exception as error:
        return f"down: {type(error).__name__}"
    return "ok"


async def _database_ping(request: Request) -> None:
    async with get_jobs_engine(request).connect() as connection:
        await connection.execute(text("SELECT 1"))


def _answer(body: dict[str, Any], statuses: list[str]) -> JSONResponse:
    healthy = all(status == "ok" for status in statuses)
    body["status"] = "ok" if healthy else "degraded"
    return JSONResponse(body, status_code=200 if healthy else 503)


@health_router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@health_router.get("/health")
@health_router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """Redis and the database answer; 503 if either is down (the families do not count)."""
    body = {
        "redis": await _check(get_jobs_pool(request).ping()),
        "database": await _check(_database_ping(request)),
    }
    return _answer(body, list(body.values()))


@health_router.get("/health/families")
async def families(
    request: Request, family: Annotated[list[str] | None, Query()] = None
) -> JSONResponse:
    """Each family's live workers and heartbeat age; 503 if one has no live worker."""
    pool = get_jobs_pool(request)
    known = known_families()
    unknown = sorted(set(family or ()) - set(known))
    if unknown:
        return JSONResponse(
            {"detail": f"unknown families: {', '.join(unknown)}; known: {', '.join(known)}"},
            status_code=404,
        )
    redis = await _check(pool.ping())
    body: dict[str, Any] = {"redis": redis, "families": {}}
    if redis == "ok":
        for name in family or known:
            state = await family_health(pool, name)
            body["families"][name] = {
                "workers": state.workers,
                "last_heartbeat_age_s": state.last_heartbeat_age_s,
                "status": "ok" if state.alive else "down: no live worker",
            }
    return _answer(body, [redis, *(f["status"] for f in body["families"].values())])
