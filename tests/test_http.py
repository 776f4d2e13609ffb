"""Sending with short retries: what is transient is retried, with Retry-After honoured."""

from __future__ import annotations

import logging

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobs import TransientJobError
from jobs.http import send_with_retries
from jobs.telemetry import tracer


def scripted(*replies: httpx.Response | Exception) -> tuple[httpx.AsyncClient, list[float]]:
    """A client whose transport answers with ``replies`` in order, and the sleeps it did."""
    queue = list(replies)

    def handler(request: httpx.Request) -> httpx.Response:
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), []


async def test_503_then_429_with_retry_after_then_success() -> None:
    """A 503 and a 429 (Retry-After: 2) are retried; the wait honours the 2 seconds."""
    client, sleeps = scripted(
        httpx.Response(503), httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200)
    )

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    response = await send_with_retries(
        client, lambda: client.build_request("GET", "http://api/x"), backoff_base=0.1, sleep=sleep
    )
    assert response.status_code == 200
    assert 0.05 <= sleeps[0] <= 0.1 and sleeps[1] == 2.0


async def test_permanent_status_is_returned_at_once() -> None:
    """A 404 is not retried: the caller gets it to judge."""
    client, _ = scripted(httpx.Response(404), httpx.Response(200))
    response = await send_with_retries(client, lambda: client.build_request("GET", "http://api/x"))
    assert response.status_code == 404


async def test_long_retry_after_hands_over_to_the_job_retry() -> None:
    """A Retry-After beyond max_wait raises TransientJobError carrying that delay."""
    client, _ = scripted(httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(TransientJobError) as error:
        await send_with_retries(
            client, lambda: client.build_request("GET", "http://api/x"), max_wait=30
        )
    assert error.value.retry_after == 120


async def test_connection_errors_exhaust_attempts_into_a_transient_error() -> None:
    """Three connection failures in a row become one TransientJobError."""
    failure = httpx.ConnectError("refused")
    client, _ = scripted(failure, failure, failure)

    async def sleep(seconds: float) -> None:
        return None

    with pytest.raises(TransientJobError, match="ConnectError after 3 attempts"):
        await send_with_retries(
            client, lambda: client.build_request("GET", "http://api/x"), attempts=3, sleep=sleep
        )


async def test_each_retry_leaves_a_warning_and_an_event_on_the_current_span(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """A 503 and a connection error, each retried: one WARNING and one span event apiece."""
    client, sleeps = scripted(
        httpx.Response(503), httpx.ConnectError("refused"), httpx.Response(200)
    )

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    with (
        caplog.at_level(logging.WARNING, logger="jobs.http"),
        tracer().start_as_current_span("a job"),
    ):
        await send_with_retries(
            client,
            lambda: client.build_request("GET", "http://api.example/x?token=abc"),
            backoff_base=0.1,
            sleep=sleep,
        )
    messages = [r.getMessage() for r in caplog.records if r.name == "jobs.http"]
    assert messages == [
        f"GET api.example: HTTP 503, attempt 1 of 4, retrying in {sleeps[0]:.2f} s",
        f"GET api.example: ConnectError, attempt 2 of 4, retrying in {sleeps[1]:.2f} s",
    ]
    [job] = spans.get_finished_spans()
    events = [(e.name, dict(e.attributes or {})) for e in job.events]
    assert events == [
        (
            "http.retry",
            {
                "http.request.method": "GET",
                "server.address": "api.example",
                "error.type": "503",
                "http.response.status_code": 503,
                "jobs.attempt": 1,
                "jobs.wait.seconds": sleeps[0],
            },
        ),
        (
            "http.retry",
            {
                "http.request.method": "GET",
                "server.address": "api.example",
                "error.type": "ConnectError",
                "jobs.attempt": 2,
                "jobs.wait.seconds": sleeps[1],
            },
        ),
    ]
