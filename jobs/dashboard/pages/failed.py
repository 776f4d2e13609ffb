"""Failed jobs: the list (by family and job), one record, requeue and purge."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from jobs.constants import queue_name
from jobs.dashboard.context import Dashboard
from jobs.dashboard.overview_data import dashboard_families
from jobs.errors import JobsError
from jobs.failures import (
    get_failed_job,
    list_failed_jobs,
    purge_failed_jobs,
    requeue_failed_job,
    summary,
)
from jobs.registry import all_jobs

__all__ = ["add_routes"]

PAGE_SIZE = 50


def add_routes(router: APIRouter, dash: Dashboard) -> None:
    """``GET /failed``, ``GET /failed/{id}``, ``POST /failed/{id}/requeue``, ``/failed/purge``."""

    @router.get("/failed", name="dashboard-failed", response_class=HTMLResponse)
    async def failed_list(
        request: Request,
        family: str = "",
        job: str = "",
        page: int = Query(0, ge=0, le=100_000),
    ) -> HTMLResponse:
        """The newest failed jobs, optionally of one family and one job."""
        families = dashboard_families()
        if family and family not in families:
            raise HTTPException(404, f"no family {family!r}")
        records = await list_failed_jobs(
            await dash.sessions(request),
            limit=PAGE_SIZE + 1,
            offset=page * PAGE_SIZE,
            job_name=job or None,
            queue=queue_name(family) if family else None,
        )
        return dash.render(
            request,
            "failed.html",
            records=[(record, dash.redact(summary(record))) for record in records[:PAGE_SIZE]],
            more=len(records) > PAGE_SIZE,
            page=page,
            family=family,
            job=job,
            families=families,
            job_names=sorted({spec.name for spec in all_jobs() if spec.family in families}),
        )

    @router.get("/failed/{record_id}", name="dashboard-failed-job", response_class=HTMLResponse)
    async def failed_record(request: Request, record_id: int) -> HTMLResponse:
        """One failed-job record: arguments (secrets masked), error, root cause, tries, trace."""
        try:
            record = await get_failed_job(await dash.sessions(request), record_id)
        except JobsError:
            raise HTTPException(404, f"no failed job {record_id}") from None
        return dash.render(
            request,
            "failed_job.html",
            record=record,
            arguments=dash.redact.values(record.arguments),
            message=dash.redact(record.error_message),
            cause=dash.redact(record.error_cause) if record.error_cause else None,
        )

    @router.post("/failed/{record_id}/requeue", name="dashboard-failed-requeue")
    async def requeue(request: Request, record_id: int) -> RedirectResponse:
        """Send the failed job back to its queue with its arguments (the CLI's requeue)."""
        await dash.guard.checked_form(request)
        try:
            await requeue_failed_job(
                await dash.sessions(request), await dash.pool(request), record_id
            )
        except JobsError as error:
            raise HTTPException(409, dash.redact(str(error))) from None
        return dash.redirect(request, "dashboard-failed-job", "requeued", record_id=record_id)

    @router.post("/failed/purge", name="dashboard-failed-purge")
    async def purge(request: Request) -> RedirectResponse:
        """Delete failed-job records older than the form's ``older_than_days`` (or all)."""
        form = await dash.guard.checked_form(request)
        days = form.get("older_than_days", "").strip()
        try:
            older = dt.timedelta(days=float(days)) if days else None
        except ValueError:
            raise HTTPException(422, "older_than_days must be a number of days") from None
        if older is not None and older < dt.timedelta(0):
            raise HTTPException(422, "older_than_days must not be negative")
        await purge_failed_jobs(await dash.sessions(request), older_than=older)
        return dash.redirect(request, "dashboard-failed", "purged")
