"""The FastAPI integration: a handler enqueues through the lifespan's pool, a worker runs it."""

from __future__ import annotations

import httpx
import pytest

from examples.app import create_app
from jobs.email import deliver_email, process_email_queue, send_email
from jobs.settings import Settings
from jobs.web import make_lifespan
from tests.conftest import make_worker, run_burst
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.usefixtures("engine")


async def test_handler_enqueues_and_worker_delivers(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    """POST /emails answers 202 with a job id; once the worker ran, GET /jobs/{id} shows it sent."""
    app = create_app(make_lifespan(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.post(
                "/emails", json={"to": "web@example.com", "subject": "Hi", "text": "from HTTP"}
            )
            assert response.status_code == 202
            job_id = response.json()["job_id"]
            assert (await client.get(f"/jobs/{job_id}")).json()["status"] == "queued"
            await run_burst(
                await make_worker(settings, [send_email, deliver_email, process_email_queue])
            )
            status = (await client.get(f"/jobs/{job_id}")).json()
    assert status["status"] == "complete" and status["success"] is True
    assert status["result"]["status"] == "sent"
    [message] = smtp_server.messages
    assert message["To"] == "web@example.com"


async def test_handler_turns_invalid_arguments_into_422(settings: Settings) -> None:
    """An address without '@' is refused at enqueue and the handler answers 422 naming `to`."""
    app = create_app(make_lifespan(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.post(
                "/emails", json={"to": "nobody", "subject": "Hi", "text": "x"}
            )
    assert response.status_code == 422
    assert "to: String should match pattern" in response.json()["detail"]
