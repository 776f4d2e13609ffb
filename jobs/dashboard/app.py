"""The dashboard as a router to include in the backend's app, or as an app of its own.

In the backend (which already runs ``jobs.web.lifespan`` for its producers), behind its own
auth dependency::

    app.include_router(dashboard_router(authorize=require_admin), prefix="/jobs/dashboard")

On its own (``uvicorn --factory jobs.dashboard:create_dashboard``), or mounted::

    app.mount("/jobs/dashboard", create_dashboard())

Either way it is off (404) unless ``DASHBOARD_ENABLED`` is true, and without an ``authorize``
dependency it asks for the ``DASHBOARD_USERNAME``/``DASHBOARD_PASSWORD`` HTTP Basic credentials.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from jobs.dashboard.context import Dashboard
from jobs.dashboard.pages import PAGES
from jobs.dashboard.security import SECURITY_HEADERS, Authorize, SecureRoute
from jobs.settings import Settings, get_settings
from jobs.web import make_lifespan

__all__ = ["create_dashboard", "dashboard_router"]


def _router(dashboard: Dashboard) -> APIRouter:
    router = APIRouter(route_class=SecureRoute, dependencies=dashboard.guard.dependencies())
    for page in PAGES:
        page.add_routes(router, dashboard)
    return router


def dashboard_router(
    settings: Settings | None = None, *, authorize: Authorize | None = None
) -> APIRouter:
    """The dashboard's routes, for an app that runs ``jobs.web.lifespan``.

    ``authorize`` is a FastAPI dependency of the backend's (it raises to refuse a request);
    without it the dashboard's own HTTP Basic credentials are required.
    """
    return _router(Dashboard(settings or get_settings(), authorize))


def create_dashboard(
    settings: Settings | None = None, *, authorize: Authorize | None = None
) -> FastAPI:
    """The dashboard as an app of its own, with its own Redis pool and database engine."""
    resolved = settings or get_settings()
    dashboard = Dashboard(resolved, authorize)
    jobs_lifespan = make_lifespan(resolved)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with jobs_lifespan(app):
            try:
                yield
            finally:
                await dashboard.aclose()

    app = FastAPI(
        title="jobs dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.dashboard = dashboard
    app.include_router(_router(dashboard))

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)  # paths of no route get them too
        response.headers.update(SECURITY_HEADERS)
        return response

    return app
