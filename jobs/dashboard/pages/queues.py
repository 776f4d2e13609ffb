"""The queue view: a family's queued or deferred jobs, a page at a time."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from jobs.dashboard.context import Dashboard
from jobs.dashboard.overview_data import dashboard_families
from jobs.dashboard.queue_reader import read_queue_page

__all__ = ["add_routes"]

#: Deepest page number accepted (far beyond any real queue at 50 a page).
MAX_PAGE = 1_000_000


def add_routes(router: APIRouter, dash: Dashboard) -> None:
    """``GET /queues/{family}?state=queued|deferred&page=N``."""

    @router.get("/queues/{family}", name="dashboard-queue", response_class=HTMLResponse)
    async def queue_page(
        request: Request,
        family: str,
        state: Literal["queued", "deferred"] = "queued",
        page: int = Query(0, ge=0, le=MAX_PAGE),
    ) -> HTMLResponse:
        """One page of the family's queue."""
        families = dashboard_families()
        if family not in families:
            raise HTTPException(404, f"no family {family!r}")
        data = await read_queue_page(await dash.pool(request), family, state, page, dash.redact)
        return dash.render(request, "queue.html", queue=data, families=families)
