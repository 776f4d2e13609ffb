"""The overview: per family queues, workers, finished and failed work; the domains' health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from jobs.dashboard.context import Dashboard
from jobs.dashboard.overview_data import read_overview

__all__ = ["add_routes"]


def add_routes(router: APIRouter, dash: Dashboard) -> None:
    """``GET /`` (the page) and ``GET /overview/live`` (the part it refreshes by itself)."""

    @router.get("/", name="dashboard-overview", response_class=HTMLResponse)
    async def overview_page(request: Request) -> HTMLResponse:
        """The overview page."""
        data = await read_overview(await dash.pool(request), await dash.sessions(request))
        return dash.render(request, "overview.html", overview=data)

    @router.get("/overview/live", name="dashboard-overview-live", response_class=HTMLResponse)
    async def overview_live(request: Request) -> HTMLResponse:
        """The overview's figures alone, fetched again every ``DASHBOARD_REFRESH_SECONDS``."""
        data = await read_overview(await dash.pool(request), await dash.sessions(request))
        return dash.render(request, "overview_live.html", overview=data)
