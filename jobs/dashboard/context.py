"""What every dashboard page shares: settings, guard, masking, templates and connections."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.client import JobsPool, create_pool
from jobs.dashboard.security import Authorize, Guard
from jobs.db.engine import create_engine, create_session_factory
from jobs.redaction import Redactor
from jobs.settings import Settings

__all__ = ["NOTICES", "Dashboard"]

TEMPLATES = Path(__file__).parent / "templates"

#: What a page says after an action redirected to it (fixed texts: nothing from the URL).
NOTICES = {
    "requeued": "The failed job was sent back to its queue.",
    "purged": "Failed-job records deleted.",
    "aborted": "Abort requested: a queued job will not run; a running one is cancelled.",
    "reactivated": "The account is active again and will sync on its next run.",
}


def _when(value: dt.datetime | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


class Dashboard:
    """One dashboard instance: built once per app or router, shared by its pages."""

    def __init__(self, settings: Settings, authorize: Authorize | None = None) -> None:
        self.settings = settings
        self.guard = Guard(settings, authorize)
        self.redact = Redactor(settings)
        self.templates = Jinja2Templates(directory=TEMPLATES)
        self.templates.env.filters["when"] = _when
        self.templates.env.filters["age"] = _age
        self._lock = asyncio.Lock()
        self._own_pool: JobsPool | None = None
        self._own_engine: AsyncEngine | None = None
        self._sessions: dict[int, async_sessionmaker[AsyncSession]] = {}

    async def _own_resources(self) -> tuple[JobsPool, AsyncEngine]:
        """Connections of its own, for a dashboard mounted without the jobs lifespan."""
        async with self._lock:
            if self._own_pool is None or self._own_engine is None:
                self._own_pool = await create_pool(self.settings)
                self._own_engine = create_engine(self.settings)
            return self._own_pool, self._own_engine

    async def aclose(self) -> None:
        """Close the connections it opened itself (none when the app's lifespan owns them)."""
        if self._own_pool is not None:
            await self._own_pool.aclose()
        if self._own_engine is not None:
            await self._own_engine.dispose()
        self._own_pool = self._own_engine = None

    async def pool(self, request: Request) -> JobsPool:
        """The app's jobs pool (``jobs.web.lifespan``), or the dashboard's own."""
        pool = getattr(request.app.state, "jobs_pool", None)
        if isinstance(pool, JobsPool):
            return pool
        return (await self._own_resources())[0]

    async def sessions(self, request: Request) -> async_sessionmaker[AsyncSession]:
        """Sessions on the app's database engine (``jobs.web.lifespan``), or the dashboard's own."""
        engine = getattr(request.app.state, "jobs_engine", None)
        if not isinstance(engine, AsyncEngine):
            engine = (await self._own_resources())[1]
        factory = self._sessions.get(id(engine))
        if factory is None:
            factory = self._sessions[id(engine)] = create_session_factory(engine)
        return factory

    def render(self, request: Request, template: str, **context: Any) -> HTMLResponse:
        """A page (or fragment) with the session's CSRF token; never cached."""
        response = HTMLResponse("")
        session = self.guard.ensure_session(request, response)
        notice = NOTICES.get(request.query_params.get("notice", ""))
        page = self.templates.TemplateResponse(
            request,
            template,
            {
                "csrf_token": self.guard.csrf_token(session),
                "notice": notice,
                "jaeger_url": self.settings.dashboard_jaeger_url,
                "refresh_seconds": self.settings.dashboard_refresh_seconds,
                **context,
            },
        )
        for name, value in response.headers.items():
            if name == "set-cookie":
                page.headers.append(name, value)
        page.headers["Cache-Control"] = "no-store"
        return page

    def redirect(
        self, request: Request, route: str, notice: str, **params: Any
    ) -> RedirectResponse:
        """303 to ``route`` after an action, saying what was done."""
        url = request.url_for(route, **params).include_query_params(notice=notice)
        return RedirectResponse(str(url), status_code=303)
