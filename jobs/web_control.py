"""A mountable router for job control: a job's state, its result, abort; failed jobs, requeue.

::

    async def require_admin(request: Request) -> None:       # the backend's own rule
        if not is_admin(request):
            raise HTTPException(status_code=403)

    app.include_router(job_control_router(authorize=require_admin), prefix="/admin")

``authorize`` is a FastAPI dependency of the backend's; it runs before every endpoint and
refuses by raising ``HTTPException`` (it may read ``request.path_params["job_id"]`` to allow a
user their own jobs only). The router cannot be built without one. Endpoints:

- ``GET /jobs/{job_id}`` — the job's report (:class:`jobs.control.JobReport`); 404 if unknown.
- ``GET /jobs/{job_id}/result?wait=S`` — waits up to ``S`` seconds (at most 30): 200 with the
  result; 202 with the state while unfinished; 409 with ``error_type`` and ``error_message``
  if it failed or was aborted; 404 if unknown.
- ``POST /jobs/{job_id}/abort`` — 202 once asked (queued jobs never run, running ones are
  cancelled); 409 if it has finished; 404 if unknown.
- ``GET /failed-jobs?job=NAME&limit=N`` — failed-job records, newest first (secrets masked).
- ``POST /failed-jobs/{record_id}/requeue`` — 202 with the new job id; 409 if refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from arq.jobs import ResultNotFound
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from jobs.control import JobHandle, JobState
from jobs.db.models import FailedJob
from jobs.errors import InvalidJobIdError, JobAbortedError, JobFailedError, JobsError
from jobs.failures import get_failed_job, list_failed_jobs, requeue_failed_job
from jobs.web_deps import JobsPoolDep, JobsSessionsDep

__all__ = ["MAX_RESULT_WAIT", "job_control_router"]

#: The longest a result request may wait, seconds.
MAX_RESULT_WAIT = 30.0

JobId = Annotated[str, Path(min_length=1, max_length=200)]


async def _handle(pool: JobsPoolDep, job_id: JobId) -> JobHandle:
    try:
        return await pool.job(job_id)
    except InvalidJobIdError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None


JobDep = Annotated[JobHandle, Depends(_handle)]


def _record(record: FailedJob) -> dict[str, Any]:
    return {column.key: getattr(record, column.key) for column in FailedJob.__table__.columns}


def _not_found(job_id: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no job {job_id}")


def job_control_router(*, authorize: Callable[..., Any]) -> APIRouter:
    """The job-control router, every endpoint behind the backend's ``authorize`` dependency."""
    if not callable(authorize):
        raise TypeError(
            "job_control_router needs authorize=<a FastAPI dependency that refuses callers "
            "who may not control jobs>"
        )
    router = APIRouter(dependencies=[Depends(authorize)], tags=["jobs"])

    @router.get("/jobs/{job_id}")
    async def job_report(job: JobDep) -> Any:
        """Where the job is, with its result or error once finished."""
        report = await job.report()
        if report.state is JobState.NOT_FOUND:
            raise _not_found(job.job_id)
        return jsonable_encoder(report.as_dict())

    @router.get("/jobs/{job_id}/result")
    async def job_result(
        job: JobDep, wait: Annotated[float, Query(ge=0, le=MAX_RESULT_WAIT)] = 0.0
    ) -> JSONResponse:
        """The job's result, waiting up to ``wait`` seconds for it."""
        try:
            result = await job.result(wait, poll_delay=min(0.5, max(wait / 10, 0.05)))
        except ResultNotFound:
            raise _not_found(job.job_id) from None
        except TimeoutError:
            report = await job.report()
            return JSONResponse({"job_id": job.job_id, "state": report.state}, status_code=202)
        except JobFailedError as error:
            failure = {"error_type": error.error_type, "error_message": error.error_message}
            body = {"job_id": job.job_id, "state": JobState.FAILED, **failure}
            return JSONResponse(body, status_code=409)
        except JobAbortedError:
            return JSONResponse({"job_id": job.job_id, "state": JobState.ABORTED}, status_code=409)
        return JSONResponse(jsonable_encoder({"job_id": job.job_id, "result": result}))

    @router.post("/jobs/{job_id}/abort", status_code=202)
    async def abort_job(job: JobDep) -> dict[str, Any]:
        """Ask for the job to be aborted."""
        if not await job.request_abort():
            report = await job.report()
            if report.state is JobState.NOT_FOUND:
                raise _not_found(job.job_id)
            raise HTTPException(status_code=409, detail=f"job {job.job_id} is {report.state}")
        return {"job_id": job.job_id, "abort_requested": True}

    @router.get("/failed-jobs")
    async def failed_jobs(
        sessions: JobsSessionsDep,
        job: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Any:
        """Failed-job records, newest first, optionally of one job."""
        records = await list_failed_jobs(sessions, limit=limit, job_name=job)
        return jsonable_encoder([_record(record) for record in records])

    @router.post("/failed-jobs/{record_id}/requeue", status_code=202)
    async def requeue(record_id: int, sessions: JobsSessionsDep, pool: JobsPoolDep) -> Any:
        """Send a failed job back to its queue with its recorded arguments."""
        try:
            await get_failed_job(sessions, record_id)
        except JobsError:
            raise HTTPException(status_code=404, detail=f"no failed job {record_id}") from None
        try:
            job_id = await requeue_failed_job(sessions, pool, record_id)
        except JobsError as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        return {"record_id": record_id, "job_id": job_id}

    return router
