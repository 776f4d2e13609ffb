"""The job view: one job's status, tries, timings, arguments or result, error and trace."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from jobs.dashboard.context import Dashboard
from jobs.dashboard.job_reader import read_job

__all__ = ["add_routes"]


def add_routes(router: APIRouter, dash: Dashboard) -> None:
    """``GET /job/{job_id}``, ``POST /abort/{job_id}``, ``GET /lookup?job_id=`` (search box)."""

    @router.get("/lookup", name="dashboard-job-lookup")
    async def lookup(request: Request, job_id: str = "") -> RedirectResponse:
        """Go to the job page of the id typed in the header."""
        if not job_id.strip():
            return RedirectResponse(str(request.url_for("dashboard-overview")), status_code=303)
        url = request.url_for("dashboard-job", job_id=job_id.strip())
        return RedirectResponse(str(url), status_code=303)

    @router.get("/job/{job_id:path}", name="dashboard-job", response_class=HTMLResponse)
    async def job_page(request: Request, job_id: str) -> HTMLResponse:
        """Everything known about the job; 404 when neither Redis nor the database knows it."""
        detail = await read_job(
            await dash.pool(request), await dash.sessions(request), job_id, dash.redact
        )
        if not detail.found:
            raise HTTPException(404, "No such job (finished results are kept for an hour)")
        return dash.render(request, "job.html", job=detail)

    @router.post("/abort/{job_id:path}", name="dashboard-abort")
    async def abort(request: Request, job_id: str) -> RedirectResponse:
        """Abort a queued, deferred or running job (the job control's ``request_abort``)."""
        await dash.guard.checked_form(request)
        handle = await (await dash.pool(request)).job(job_id)
        if not await handle.request_abort():
            raise HTTPException(409, "The job has finished or is unknown: nothing to abort")
        return dash.redirect(request, "dashboard-job", "aborted", job_id=job_id)
