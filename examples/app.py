"""A small FastAPI app that enqueues jobs from its handlers.

Run it with ``uvicorn examples.app:app``; POST /emails to send an e-mail through the worker,
GET /health/ready for Redis and the database, /health/families for the workers. Requests are
traced, so a POST /emails trace holds the HTTP span, the PRODUCER span and the worker's spans.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel

from jobs import JobArgumentsError, get_settings
from jobs.telemetry import configure_telemetry
from jobs.web import JobsPoolDep, health_router, lifespan


class EmailRequest(BaseModel):
    """What a client posts to have an e-mail sent."""

    to: str
    subject: str
    text: str


def create_app(app_lifespan: Any = lifespan) -> FastAPI:
    """Build the example app with the given lifespan."""
    configure_telemetry(get_settings(), "app")  # OTEL_* settings; a no-op if already set up
    app = FastAPI(title="assistant jobs example", lifespan=app_lifespan)
    app.include_router(health_router)
    FastAPIInstrumentor.instrument_app(app)

    @app.post("/emails", status_code=202)
    async def send(request: EmailRequest, pool: JobsPoolDep) -> dict[str, Any]:
        """Enqueue ``send_email`` and answer with the job id."""
        try:
            job = await pool.enqueue_job("send_email", **request.model_dump())
        except JobArgumentsError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        assert job is not None
        return {"job_id": job.job_id, "queue": "email"}

    @app.get("/jobs/{job_id}")
    async def status(job_id: str, pool: JobsPoolDep) -> dict[str, Any]:
        """The job's ARQ status, and its result once finished."""
        job = await pool.job(job_id)
        state = await job.status()
        info = await job.result_info()
        return {
            "job_id": job_id,
            "status": state.value,
            "success": None if info is None else info.success,
            "result": None if info is None else info.result,
        }

    return app


app = create_app()
