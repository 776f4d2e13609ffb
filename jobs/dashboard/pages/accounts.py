"""Sync accounts and AI tasks: state, last success, last error."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from jobs.dashboard.account_reader import read_accounts, read_ai_tasks
from jobs.dashboard.context import Dashboard

__all__ = ["add_routes"]


def add_routes(router: APIRouter, dash: Dashboard) -> None:
    """``GET /accounts``."""

    @router.get("/accounts", name="dashboard-accounts", response_class=HTMLResponse)
    async def accounts_page(request: Request) -> HTMLResponse:
        """Connected accounts and AI tasks, the troubled ones first."""
        sessions = await dash.sessions(request)
        return dash.render(
            request,
            "accounts.html",
            accounts=await read_accounts(sessions, dash.redact),
            tasks=await read_ai_tasks(sessions, dash.redact),
        )
