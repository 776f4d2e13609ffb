"""Sync accounts and AI tasks: state, last success, last error; reactivating an account."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from jobs.dashboard.account_reader import read_accounts, read_ai_tasks
from jobs.dashboard.context import Dashboard
from jobs.errors import JobsError
from jobs.sync.accounts_command import ACCOUNT_KINDS, reactivate_account

__all__ = ["add_routes"]


def add_routes(router: APIRouter, dash: Dashboard) -> None:
    """``GET /accounts`` and ``POST /accounts/{provider}/{id}/reactivate``."""

    @router.get("/accounts", name="dashboard-accounts", response_class=HTMLResponse)
    async def accounts_page(request: Request) -> HTMLResponse:
        """Connected accounts and AI tasks, the troubled ones first."""
        sessions = await dash.sessions(request)
        return dash.render(
            request,
            "accounts.html",
            accounts=await read_accounts(sessions, dash.redact),
            tasks=await read_ai_tasks(sessions, dash.redact),
            can_reactivate=True,
        )

    @router.post(
        "/accounts/{provider}/{account_id}/reactivate", name="dashboard-account-reactivate"
    )
    async def reactivate(request: Request, provider: str, account_id: int) -> RedirectResponse:
        """Set the account active, failures cleared (as ``python -m jobs accounts reactivate``)."""
        await dash.guard.checked_form(request)
        if provider not in ACCOUNT_KINDS:
            raise HTTPException(404, f"no account kind {provider!r}")
        try:
            await reactivate_account(dash.settings, provider, account_id)
        except JobsError as error:
            raise HTTPException(404, dash.redact(str(error))) from None
        return dash.redirect(request, "dashboard-accounts", "reactivated")
