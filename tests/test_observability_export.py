"""What an operator sees of failures, read from a real OTLP export of worker processes.

A bounced e-mail and a failed AI run are failures in the trace (status ERROR, ``error.type``),
in the metrics (``error.type`` on the messaging metrics, the families' outcome counters) and
in the CLI (``failed list``, ``status``, ``emails failed``); jobs enqueued from the CLI or by
other jobs join the trace of what enqueued them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.settings import Settings
from tests.ai_data import add_task, add_user
from tests.llm_server import FakeLlm
from tests.otlp_receiver import GrpcOtlpReceiver, OtlpReceiver, Received, ReceivedPoint
from tests.smtp_server import SmtpServer
from tests.test_observability_process import run_cli, stop_worker, wait_for
from tests.test_worker_process import ARQ, worker_environment

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("engine"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

PRODUCER, CONSUMER, CLIENT = 4, 5, 3  # OTLP span kinds
STATUS_ERROR = 2


def exporting_environment(settings: Settings, endpoint: str, **more: str) -> dict[str, str]:
    """A worker's environment that names only the OTLP endpoint: exporters are the defaults."""
    env = worker_environment(settings)
    del env["OTEL_TRACES_EXPORTER"], env["OTEL_METRICS_EXPORTER"]
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="200",
        **more,
    )
    return env


def start(family: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """`arq jobs.<family>.WorkerSettings` in its own process."""
    return subprocess.Popen(
        [ARQ, f"jobs.{family}.WorkerSettings"],
        env=env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def point(
    receiver: Received, metric: str, error_type: str | None = None, **attributes: Any
) -> ReceivedPoint | None:
    """The newest data point of ``metric`` with ``attributes`` and exactly this ``error.type``."""
    wanted = {name.replace("_", "."): value for name, value in attributes.items()}
    with receiver.lock:
        points = list(receiver.points)
    for candidate in reversed(points):
        if (
            candidate.metric == metric
            and candidate.attributes.get("error.type") == error_type
            and all(candidate.attributes.get(k) == v for k, v in wanted.items())
        ):
            return candidate
    return None


def messaging(operation: str, job: str) -> dict[str, str]:
    """The attributes every messaging data point of ``job`` must carry."""
    return {
        "messaging_system": "arq",
        "messaging_operation_name": operation,
        "messaging_operation_type": operation,
        "messaging_arq_job_name": job,
    }


def consumers_of(receiver: Received, job: str) -> list[Any]:
    """The CONSUMER spans of ``job`` received so far."""
    return [
        s
        for s in receiver.received()
        if s.kind == CONSUMER and s.attributes.get("messaging.arq.job.name") == job
    ]


async def test_a_bounced_email_is_a_failure_in_trace_metrics_and_cli(
    settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """A 550 to send_email enqueued from the CLI: ERROR spans, error.type metrics, CLI views."""
    with OtlpReceiver() as receiver:
        env = exporting_environment(
            settings, receiver.endpoint, OTEL_SEMCONV_STABILITY_OPT_IN="database"
        )
        worker = start("email", env, tmp_path)
        try:
            for to in ("reject@example.com", "ok@example.com"):
                enqueued = await run_cli(
                    env, tmp_path, "enqueue", "send_email", f"to={to}", "subject=Hi", "text=x"
                )
                assert enqueued.returncode == 0, enqueued.stderr

            def both_ran() -> bool:
                return len(consumers_of(receiver, "send_email")) == 2 and bool(
                    point(receiver, "jobs.email.deliveries", email_delivery_outcome="bounced")
                )

            await wait_for(both_ran, 30, worker)
            failed_list, status, failed_emails = [
                finished.stdout
                for finished in await asyncio.gather(
                    run_cli(env, tmp_path, "failed", "list"),
                    run_cli(env, tmp_path, "status"),
                    run_cli(env, tmp_path, "emails", "failed"),
                )
            ]
        finally:
            output = stop_worker(worker)
    spans = receiver.received()
    text_of_all_spans = str([(s.attributes, s.event_attributes, s.status_message) for s in spans])
    assert "reject@example.com" not in text_of_all_spans, output

    # the trace: CLI producer -> consumer (ERROR, EmailBounced) -> SMTP client span (550)
    [bounced] = [s for s in consumers_of(receiver, "send_email") if s.status_code == STATUS_ERROR]
    assert bounced.attributes["error.type"] == "EmailBounced"
    assert bounced.status_message == "550 5.1.1 no such user here"
    [producer] = [s for s in spans if s.span_id == bounced.parent_span_id]
    assert (producer.kind, producer.trace_id) == (PRODUCER, bounced.trace_id)
    assert producer.resource["service.name"] == "jobs-cli"
    [smtp] = [s for s in spans if s.name == "smtp send" and s.parent_span_id == bounced.span_id]
    assert smtp.kind == CLIENT and smtp.status_code == STATUS_ERROR
    assert smtp.attributes["server.address"] == "127.0.0.1"
    assert smtp.attributes["server.port"] == smtp_server.port
    assert smtp.attributes["smtp.response.status_code"] == 550
    assert smtp.attributes["error.type"] == "550"
    assert smtp.attributes["email.message.id"].startswith("<outbound.")
    [delivered] = [s for s in consumers_of(receiver, "send_email") if s is not bounced]
    assert delivered.status_code != STATUS_ERROR and "error.type" not in delivered.attributes
    sql = [s for s in spans if s.parent_span_id == delivered.span_id and s.kind == CLIENT]
    assert any("db.query.text" in s.attributes for s in sql)  # stable database conventions

    # the metrics, with the messaging conventions' attributes and error.type only on failure
    failure = point(
        receiver, "messaging.process.duration", "EmailBounced", **messaging("process", "send_email")
    )
    success = point(receiver, "messaging.process.duration", **messaging("process", "send_email"))
    assert failure is not None and failure.value == 1 and failure.unit == "s"
    assert success is not None and success.value == 1
    assert "outcome" not in failure.attributes and "outcome" not in success.attributes
    assert failure.bounds[:3] == (0.005, 0.01, 0.025)
    sent = point(receiver, "messaging.client.sent.messages", **messaging("send", "send_email"))
    assert sent is not None and sent.resource["service.name"] == "jobs-cli"
    send_time = point(
        receiver, "messaging.client.operation.duration", **messaging("send", "send_email")
    )
    assert send_time is not None and send_time.value == 1
    consumed = point(
        receiver, "messaging.client.consumed.messages", **messaging("process", "send_email")
    )
    assert consumed is not None and consumed.value == 2
    for outcome in ("bounced", "sent"):
        counted = point(receiver, "jobs.email.deliveries", email_delivery_outcome=outcome)
        assert counted is not None and counted.value == 1, outcome

    # the CLI
    [listed] = failed_list.splitlines()
    assert "send_email" in listed and "EmailBounced: 550 5.1.1 no such user here" in listed
    [email_line] = [line for line in status.splitlines() if line.startswith("email ")]
    assert email_line.split()[5] == "1"  # failed 1h
    assert "e-mails 1h:   sent 1, failed 1;" in status
    [failed_email] = failed_emails.splitlines()
    assert "to=reject@example.com" in failed_email
    assert failed_email.endswith(": 550 5.1.1 no such user here")


async def test_a_failed_ai_run_over_grpc_is_a_failure_in_the_scheduler_trace(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
    tmp_path: Path,
) -> None:
    """OTLP over gRPC: the scheduler's run job joins its trace and fails as AiRunFailed."""
    ann = await add_user(sessions, "ann@example.com")
    # recurring, so that its failed run pauses it (a one-off task would end 'failed')
    due = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    await add_task(sessions, ann, next_run_at=due, cron="0 7 * * *")
    with GrpcOtlpReceiver() as receiver:
        env = exporting_environment(
            settings,
            receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            LLM_BASE_URL=llm_server.base_url,
            LLM_API_KEY="sk-wrong",
            AI_TASK_MAX_FAILURES="1",
        )
        worker = start("ai", env, tmp_path)
        try:
            enqueued = await run_cli(env, tmp_path, "enqueue", "schedule_ai_tasks")
            assert enqueued.returncode == 0, enqueued.stderr

            def run_failed() -> bool:
                return bool(consumers_of(receiver, "run_ai_task")) and bool(
                    point(receiver, "jobs.ai.runs", ai_run_status="failed")
                )

            await wait_for(run_failed, 30, worker)
            status, failed_list = [
                finished.stdout
                for finished in await asyncio.gather(
                    run_cli(env, tmp_path, "status"), run_cli(env, tmp_path, "failed", "list")
                )
            ]
        finally:
            output = stop_worker(worker)
    spans = receiver.received()
    [run] = consumers_of(receiver, "run_ai_task")
    [producer] = [s for s in spans if s.span_id == run.parent_span_id]
    # the scheduler run that claimed the task (the CLI's, or the every-minute cron's)
    schedulers = consumers_of(receiver, "schedule_ai_tasks")
    [scheduler] = [s for s in schedulers if s.span_id == producer.parent_span_id]
    assert producer.kind == PRODUCER and run.trace_id == scheduler.trace_id
    assert run.status_code == STATUS_ERROR and run.attributes["error.type"] == "AiRunFailed"
    assert "401" in run.status_message, output
    assert "domain failure" in run.events
    failure = point(
        receiver, "messaging.process.duration", "AiRunFailed", **messaging("process", "run_ai_task")
    )
    assert failure is not None and failure.value == 1
    paused = point(receiver, "jobs.ai.tasks.paused", ai_pause_reason="failures")
    assert paused is not None and paused.value == 1
    assert "ai runs 1h:   succeeded 0, failed 1; tasks paused 1" in status
    [ai_line] = [line for line in status.splitlines() if line.split()[:2] == ["ai", "0"]]
    assert ai_line.split()[5] == "1"
    assert "run_ai_task" in failed_list and "AiRunFailed: LlmError: LLM API HTTP 401" in failed_list


async def test_sync_waits_fan_out_and_reconsent_arrive_in_the_export(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A 429 and rate-limit waits are timed by reason; fan-out joins the trace; re-consent fails."""
    from jobs.db import NotionIntegration
    from tests.fakes.google_calendar import FakeGoogleCalendar
    from tests.fakes.notion import FakeNotion
    from tests.sync_support import KEY, add_user, connect_google

    async with FakeGoogleCalendar() as google, FakeNotion() as notion:
        for n in range(5):
            google.put_event("primary", summary=f"event {n}")
        google.fail(429, "rateLimitExceeded", retry_after=0.3)
        synced = settings.model_copy(update={"token_encryption_key": SecretStr(KEY)})
        await connect_google(sessions, synced, google, "ann@example.com")
        async with sessions.begin() as session:
            session.add(NotionIntegration(user_id=await add_user(sessions, "bob@example.com")))
        with OtlpReceiver() as receiver:
            env = exporting_environment(
                settings,
                receiver.endpoint,
                TOKEN_ENCRYPTION_KEY=KEY,
                GOOGLE_API_BASE_URL=google.base_url,
                GOOGLE_TOKEN_URL=google.token_url,
                GOOGLE_CLIENT_ID=google.client_id,
                GOOGLE_CLIENT_SECRET=google.client_secret,
                GOOGLE_PAGE_SIZE="2",
                GOOGLE_RATE_PER_SECOND="4",
                GOOGLE_RATE_BURST="1",
                NOTION_API_BASE_URL=notion.base_url,
                SYNC_BACKOFF_BASE_SECONDS="0.02",
            )
            worker = start("sync", env, tmp_path)
            try:
                for command in (
                    ["sync_calendar_events"],
                    ["sync_notion_integration", "integration_id=1"],
                ):
                    enqueued = await run_cli(env, tmp_path, "enqueue", *command)
                    assert enqueued.returncode == 0, enqueued.stderr

                def both_synced() -> bool:
                    return bool(
                        point(receiver, "jobs.sync.accounts", sync_provider="google")
                        and point(receiver, "jobs.sync.accounts", sync_provider="notion")
                        and consumers_of(receiver, "sync_notion_integration")
                    )

                await wait_for(both_synced, 30, worker)
                status = (await run_cli(env, tmp_path, "status")).stdout
            finally:
                output = stop_worker(worker)
    job = {"messaging_arq_job_name": "sync_calendar_account"}
    retried = point(receiver, "jobs.wait.duration", "429", jobs_wait_reason="http_retry", **job)
    assert retried is not None and retried.value == 1 and retried.total >= 0.3, output
    limited = point(receiver, "jobs.wait.duration", jobs_wait_reason="rate_limit", **job)
    assert limited is not None and limited.value >= 1 and limited.total > 0
    account = consumers_of(receiver, "sync_calendar_account")[0]
    [producer] = [s for s in receiver.received() if s.span_id == account.parent_span_id]
    fan_outs = consumers_of(receiver, "sync_calendar_events")
    assert producer.kind == PRODUCER
    assert producer.parent_span_id in {s.span_id for s in fan_outs}
    [reconsent] = consumers_of(receiver, "sync_notion_integration")
    assert reconsent.status_code == STATUS_ERROR
    assert reconsent.attributes["error.type"] == "ReconsentRequired"
    active = point(receiver, "jobs.sync.accounts", sync_provider="google")
    assert active is not None and active.attributes["sync.account.state"] == "active"
    needs = point(receiver, "jobs.sync.accounts", sync_provider="notion")
    assert needs is not None and needs.attributes["sync.account.state"] == "needs_reconsent"
    assert "notion accounts: active 0, needs_reconsent 1, error 0" in status
    [sync_line] = [line for line in status.splitlines() if line.startswith("sync ")]
    assert sync_line.split()[5] == "1"
