"""Schedules: every family's cron jobs with their next runs, and the per-user daily summary."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from jobs.dashboard.context import Dashboard
from jobs.dashboard.overview_data import dashboard_families
from jobs.dashboard.schedule_reader import cron_rows, summary_zones
from jobs.email.daily import SUMMARY_TIME

__all__ = ["add_routes"]


def add_routes(router: APIRouter, dash: Dashboard) -> None:
    """``GET /schedules``."""

    @router.get("/schedules", name="dashboard-schedules", response_class=HTMLResponse)
    async def schedules_page(request: Request) -> HTMLResponse:
        """Cron jobs in ``SCHEDULE_TIMEZONE`` and the summary's send times per user zone."""
        now = dt.datetime.now(dt.UTC)
        return dash.render(
            request,
            "schedules.html",
            crons=cron_rows(dash.settings, dashboard_families(), now),
            zones=await summary_zones(await dash.sessions(request), dash.settings.timezone, now),
            summary_time=SUMMARY_TIME,
        )
