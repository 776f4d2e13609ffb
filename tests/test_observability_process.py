"""A real worker process observed from outside: OTLP traces, Prometheus, JSON logs, health."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from examples.app import create_app
from jobs.settings import Settings
from jobs.web import make_lifespan
from tests.otlp_receiver import OtlpReceiver
from tests.smtp_server import SmtpServer, free_port
from tests.test_worker_process import ARQ, worker_environment

# Process-level behaviour does not depend on the database; SQLite keeps these runs short.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("engine"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

CONSUMER, SERVER, CLIENT = 5, 2, 3  # OTLP span kinds


def start_worker(
    env: dict[str, str], cwd: Path, settings_class: str = "jobs.email.WorkerSettings"
) -> subprocess.Popen[str]:
    """`arq <settings_class>` (the email family's by default) in its own process."""
    return subprocess.Popen(
        [ARQ, settings_class],
        env=env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop_worker(worker: subprocess.Popen[str]) -> str:
    """SIGTERM the worker and return everything it printed."""
    worker.send_signal(signal.SIGTERM)
    try:
        output, _ = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
        raise AssertionError(f"worker did not stop on SIGTERM:\n{output}") from None
    return output


async def wait_for(condition: object, seconds: float, worker: subprocess.Popen[str]) -> None:
    """Poll ``condition()`` until true, failing early if the worker died."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert worker.poll() is None, worker.communicate()[0]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def run_command(
    env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run a command with the worker's environment, off the event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        list(args),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m jobs …` with the worker's environment."""
    return await run_command(env, cwd, sys.executable, "-m", "jobs", *args)


async def test_request_to_worker_trace_metrics_logs_and_health(
    settings: Settings, smtp_server: SmtpServer, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    """POST /emails gives one trace (server, producer, consumer, SQL), a count, logs, health."""
    metrics_port = free_port()
    with OtlpReceiver() as receiver:
        env = worker_environment(settings) | {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "METRICS_PORT": str(metrics_port),
            "WORKER_HEARTBEAT_INTERVAL": "0.5",
            "LOG_FORMAT": "json",
        }
        worker = start_worker(env, tmp_path)
        try:
            app = create_app(make_lifespan(settings))
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                    response = await client.post(
                        "/emails", json={"to": "t@example.com", "subject": "Traced", "text": "x"}
                    )
                    assert response.status_code == 202
                    job_id = response.json()["job_id"]
                    await wait_for(lambda: smtp_server.messages, 30, worker)

                    def consumer_arrived() -> bool:
                        return any(
                            s.kind == CONSUMER and s.attributes["messaging.message.id"] == job_id
                            for s in receiver.received()
                        )

                    await wait_for(consumer_arrived, 15, worker)
                    health = await client.get("/health/families", params={"family": "email"})
            assert health.json()["families"]["email"] | {"last_heartbeat_age_s": 0} == {
                "workers": 1,
                "status": "ok",
                "last_heartbeat_age_s": 0,
            }
            assert (await run_cli(env, tmp_path, "health", "email")).returncode == 0
            status = (await run_cli(env, tmp_path, "status")).stdout
            [email_line] = [line for line in status.splitlines() if line.startswith("email ")]
            assert email_line.split()[-1] == "1"
            check = await run_command(env, tmp_path, ARQ, "--check", "jobs.email.WorkerSettings")
            assert check.returncode == 0
            async with httpx.AsyncClient() as scraper:
                scraped = (await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        finally:
            output = stop_worker(worker)

    # one trace: HTTP server span -> PRODUCER (this process) -> CONSUMER -> SQL (worker process)
    [producer] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    server_spans = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert producer.parent is not None
    assert producer.parent.span_id in {s.context.span_id for s in server_spans}
    trace_id = f"{producer.context.trace_id:032x}"
    [consumer] = [
        s
        for s in receiver.received()
        if s.kind == CONSUMER and s.attributes["messaging.message.id"] == job_id
    ]
    assert consumer.trace_id == trace_id
    assert consumer.parent_span_id == f"{producer.context.span_id:016x}"
    assert consumer.links == [(trace_id, f"{producer.context.span_id:016x}")]
    assert consumer.name == "process jobs:queue:email"
    assert consumer.attributes["messaging.message.id"] == job_id
    assert consumer.attributes["messaging.arq.job.name"] == "send_email"
    assert consumer.resource["service.name"] == "jobs-email"
    assert "service.instance.id" in consumer.resource
    sql = [s for s in receiver.received() if s.parent_span_id == consumer.span_id]
    assert any(s.kind == CLIENT and "outbound_emails" in str(s.attributes) for s in sql)

    # Prometheus counted the try, with the messaging conventions' attributes and no outcome label
    [duration] = [
        line
        for line in scraped.splitlines()
        if line.startswith("messaging_process_duration_seconds_count{")
        and 'messaging_arq_job_name="send_email"' in line
    ]
    for label in (
        'messaging_system="arq"',
        'messaging_operation_name="process"',
        'messaging_destination_name="jobs:queue:email"',
    ):
        assert label in duration, duration
    assert "outcome" not in duration and "error_type" not in duration
    assert duration.endswith(" 1.0"), duration

    # JSON log lines for start and end, carrying the consumer's trace and span ids
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    ended = [r for r in records if r.get("job_id") == job_id and r.get("outcome") == "success"]
    assert len(ended) == 1
    assert ended[0]["trace_id"] == trace_id and ended[0]["span_id"] == consumer.span_id
    assert ended[0]["queue"] == "jobs:queue:email" and ended[0]["duration_s"] > 0

    # after the worker stopped, nothing is alive any more
    assert (await run_cli(env, tmp_path, "health", "email")).returncode == 1
    after = await run_command(env, tmp_path, ARQ, "--check", "jobs.email.WorkerSettings")
    assert after.returncode == 1


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_collector_down_never_blocks_the_worker(
    settings: Settings, smtp_server: SmtpServer, tmp_path: Path, protocol: str
) -> None:
    """With the OTLP endpoint refusing connections the worker still delivers and stops in time."""
    from jobs.client import create_pool

    env = worker_environment(settings) | {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
    }
    worker = start_worker(env, tmp_path)
    pool = await create_pool(settings)
    try:
        started = time.monotonic()
        for number in range(3):
            await pool.enqueue_job("send_email", to=f"n{number}@example.com", subject="s", text="t")
        await wait_for(lambda: len(smtp_server.messages) == 3, 30, worker)
        delivered_in = time.monotonic() - started
    finally:
        await pool.aclose()
        stopping = time.monotonic()
        output = stop_worker(worker)
    stopped_in = time.monotonic() - stopping
    assert worker.returncode == 0, output
    assert delivered_in < 15, output
    assert stopped_in < 10, output
