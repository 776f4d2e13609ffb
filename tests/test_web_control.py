"""The job-control router over HTTP: status, result, abort, failed jobs, behind authorization."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request

from jobs import JobsPool
from jobs.settings import Settings
from jobs.web import job_control_router, make_lifespan
from tests import sample_jobs
from tests.conftest import make_worker, run_burst

pytestmark = pytest.mark.usefixtures("engine")


async def require_admin(request: Request) -> None:
    """The test backend's rule: only requests saying ``X-Role: admin`` control jobs."""
    if request.headers.get("x-role") != "admin":
        raise HTTPException(status_code=403, detail="admins only")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of an app mounting the router under /admin, as an admin."""
    app = FastAPI(lifespan=make_lifespan(settings))
    app.include_router(job_control_router(authorize=require_admin), prefix="/admin")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://app", headers={"X-Role": "admin"}
        ) as http:
            yield http


def test_the_router_cannot_be_built_without_an_authorization_dependency() -> None:
    """``job_control_router(authorize=None)`` is refused with a TypeError saying what to pass."""
    with pytest.raises(TypeError, match="job_control_router needs authorize="):
        job_control_router(authorize=None)  # type: ignore[arg-type]


async def test_a_refused_caller_can_neither_read_nor_abort(
    client: httpx.AsyncClient, pool: JobsPool
) -> None:
    """Without the admin header every endpoint answers 403 and the job is not aborted."""
    job = await pool.enqueue_job("test_wait", seconds=0, _defer_by=3600)
    assert job is not None
    anonymous = {"X-Role": "user"}
    for method, path in (
        ("GET", f"/admin/jobs/{job.job_id}"),
        ("GET", f"/admin/jobs/{job.job_id}/result"),
        ("POST", f"/admin/jobs/{job.job_id}/abort"),
        ("GET", "/admin/failed-jobs"),
        ("POST", "/admin/failed-jobs/1/requeue"),
    ):
        response = await client.request(method, path, headers=anonymous)
        assert response.status_code == 403, (method, path)
    report = await job.report()
    assert (report.state, report.abort_requested) == ("deferred", False)


async def test_status_abort_and_result_of_a_job(
    client: httpx.AsyncClient, pool: JobsPool, settings: Settings
) -> None:
    """A deferred job: reported, aborted over HTTP, then recorded aborted by the worker."""
    job = await pool.enqueue_job("test_wait", seconds=0, _defer_by=3600)
    assert job is not None
    status = (await client.get(f"/admin/jobs/{job.job_id}")).json()
    assert (status["state"], status["name"], status["abort_requested"]) == (
        "deferred",
        "test_wait",
        False,
    )
    waiting = await client.get(f"/admin/jobs/{job.job_id}/result", params={"wait": 0.1})
    assert (waiting.status_code, waiting.json()["state"]) == (202, "deferred")
    aborted = await client.post(f"/admin/jobs/{job.job_id}/abort")
    assert aborted.status_code == 202
    await run_burst(await make_worker(settings, [sample_jobs.wait]))
    assert (await client.get(f"/admin/jobs/{job.job_id}")).json()["state"] == "aborted"
    result = await client.get(f"/admin/jobs/{job.job_id}/result")
    assert (result.status_code, result.json()["state"]) == (409, "aborted")
    again = await client.post(f"/admin/jobs/{job.job_id}/abort")
    assert (again.status_code, again.json()["detail"]) == (409, f"job {job.job_id} is aborted")
    assert (await client.get("/admin/jobs/no-such-job")).status_code == 404
    assert (await client.post("/admin/jobs/no-such-job/abort")).status_code == 404
    assert (await client.get("/admin/jobs/has%20space")).status_code == 422


async def test_failed_job_result_listing_and_requeue(
    client: httpx.AsyncClient, pool: JobsPool, settings: Settings
) -> None:
    """A failed job's result is 409 with its error; it is listed, requeued once, then refused."""
    job = await pool.enqueue_job("test_refuse", reason="report source is gone")
    ok = await pool.enqueue_job("test_echo", number=5)
    assert job is not None and ok is not None
    await run_burst(await make_worker(settings, [sample_jobs.refuse, sample_jobs.echo]))

    result = await client.get(f"/admin/jobs/{job.job_id}/result", params={"wait": 5})
    assert result.status_code == 409
    assert result.json() == {
        "job_id": job.job_id,
        "state": "failed",
        "error_type": "PermanentJobError",
        "error_message": "report source is gone",
    }
    succeeded = await client.get(f"/admin/jobs/{ok.job_id}/result")
    assert succeeded.json()["result"] == {"number": 5, "label": "x", "try": 1}

    [record] = (await client.get("/admin/failed-jobs", params={"job": "test_refuse"})).json()
    assert (record["job_id"], record["error_type"], record["arguments"]) == (
        job.job_id,
        "PermanentJobError",
        {"reason": "report source is gone"},
    )
    requeued = await client.post(f"/admin/failed-jobs/{record['id']}/requeue")
    assert requeued.status_code == 202
    new_job = await pool.job(requeued.json()["job_id"])
    assert (await new_job.report()).state == "queued"
    twice = await client.post(f"/admin/failed-jobs/{record['id']}/requeue")
    assert twice.status_code == 409 and "requeued already" in twice.json()["detail"]
    assert (await client.post("/admin/failed-jobs/999999/requeue")).status_code == 404
