"""Known secret values and personal data stay out of logs, spans, results and stored errors."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.ai import run_ai_task, schedule_ai_tasks
from jobs.db import AiTaskRun, FailedJob, GoogleAccount, OutboundEmail
from jobs.logs import configure_logging
from jobs.settings import Settings
from jobs.sync import cipher_from_settings, sync_calendar_account
from tests.ai_data import add_task, add_user, get_task
from tests.conftest import make_worker, run_burst
from tests.fakes.echoing import EchoingUpstream
from tests.processes import WorkerProcess, worker_environment
from tests.sync_support import KEY as TOKEN_KEY
from tests.sync_support import add_user as add_plain_user

LLM_KEY = "sk-live-0123456789-the-real-key-abcdef"
CLIENT_SECRET = "GOCSPX-the-client-secret-0123456789"
DUE = dt.datetime(2026, 6, 1, 5, tzinfo=dt.UTC)


async def redis_text(redis_url: str) -> str:
    """Every string value in the test Redis database, as one text."""
    redis = Redis.from_url(redis_url)
    try:
        values = []
        for key in await redis.keys("*"):
            if await redis.type(key) == b"string":
                values.append((await redis.get(key) or b"").decode("utf-8", "replace"))
        return "\n".join(values)
    finally:
        await redis.aclose()


def span_text(spans: InMemorySpanExporter) -> str:
    """Names, attributes, events and statuses of every finished span, as one text."""
    return "\n".join(span.to_json() for span in spans.get_finished_spans())


@pytest.fixture
def log_streams() -> Iterator[dict[str, io.StringIO]]:
    """Handlers as ARQ's CLI, uvicorn and an application set them up, each writing to a buffer."""
    streams = {name: io.StringIO() for name in ("root", "arq", "uvicorn", "uvicorn.access")}
    installed = []
    for name, stream in streams.items():
        logger = logging.getLogger() if name == "root" else logging.getLogger(name)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
        installed.append((logger, handler, logger.level, logger.propagate))
        logger.setLevel(logging.INFO)
        logger.propagate = name in ("root", "arq")
    yield streams
    for logger, handler, level, propagate in installed:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_handler_masks_secrets_whichever_logger_wrote(
    settings: Settings, log_streams: dict[str, io.StringIO]
) -> None:
    """A key logged by jobs.ai.tasks, ARQ, uvicorn or a library, or in a traceback, is masked."""
    configure_logging(settings.model_copy(update={"llm_api_key": SecretStr(LLM_KEY)}))
    logging.getLogger("jobs.ai.tasks").warning("AI task 1 failed: LLM said %s", LLM_KEY)
    logging.getLogger("arq.worker").info("job failed, LlmError: key %s", LLM_KEY)
    logging.getLogger("uvicorn.error").error("upstream echoed %s", LLM_KEY)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /?key=%s" 200', LLM_KEY)
    try:
        raise RuntimeError(f"refused key {LLM_KEY}")
    except RuntimeError:
        logging.getLogger("httpx").exception("request failed")
    written = {name: stream.getvalue() for name, stream in log_streams.items()}
    assert all(LLM_KEY not in text for text in written.values()), written
    assert "jobs.ai.tasks: AI task 1 failed: LLM said ***" in written["root"]
    assert "uvicorn.error: upstream echoed ***" in written["uvicorn"]
    assert "RuntimeError: refused key ***" in written["root"]
    assert "arq.worker: job failed, LlmError: key ***" in written["arq"]
    assert "GET /?key=***" in written["uvicorn.access"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_fastapi_lifespan_masks_the_app_servers_handlers(
    settings: Settings, log_streams: dict[str, io.StringIO]
) -> None:
    """An app started with jobs.web's lifespan masks secrets in uvicorn's own log handlers."""
    from fastapi import FastAPI

    from jobs.web import make_lifespan

    app = FastAPI(
        lifespan=make_lifespan(settings.model_copy(update={"llm_api_key": SecretStr(LLM_KEY)}))
    )
    async with app.router.lifespan_context(app):
        logging.getLogger("uvicorn.error").error("request carried %s", LLM_KEY)
    assert log_streams["uvicorn"].getvalue() == "uvicorn.error: request carried ***\n"


async def test_an_echoed_llm_key_is_stored_returned_logged_and_traced_masked(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An LLM gateway quoting the key in its 401: run error, task result, Redis, logs, spans."""
    caplog.set_level(logging.INFO)
    async with EchoingUpstream() as upstream:
        ai_settings = settings.model_copy(
            update={"llm_base_url": upstream.llm_base_url, "llm_api_key": SecretStr(LLM_KEY)}
        )
        task_id = await add_task(
            sessions, await add_user(sessions, "ann@example.com"), next_run_at=DUE
        )
        job = await pool.enqueue_job("run_ai_task", task_id=task_id, scheduled_for=DUE)
        assert job is not None
        await run_burst(
            await make_worker(ai_settings, [schedule_ai_tasks, run_ai_task], family="ai")
        )
        assert upstream.requests == 1
    result = await job.result(timeout=1)
    async with sessions() as session:
        [run] = list(await session.scalars(select(AiTaskRun)))
    task = await get_task(sessions, task_id)
    assert run.error == "LlmError: LLM API HTTP 401: Incorrect API key provided: ***"
    assert task.last_result == f"error: {run.error}"
    assert result["error"] == run.error
    assert LLM_KEY not in caplog.text and "Incorrect API key provided: ***" in caplog.text
    assert LLM_KEY not in await redis_text(settings.redis_url)
    assert LLM_KEY not in span_text(spans)


async def test_an_echoed_google_client_secret_is_recorded_masked(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A token endpoint quoting the client secret: account error, failed job, logs, spans masked."""
    caplog.set_level(logging.INFO)
    async with EchoingUpstream() as upstream:
        sync_settings = settings.model_copy(
            update={
                "token_encryption_key": SecretStr(TOKEN_KEY),
                "google_token_url": upstream.token_url,
                "google_api_base_url": upstream.llm_base_url,
                "google_client_id": "client-1",
                "google_client_secret": SecretStr(CLIENT_SECRET),
            }
        )
        cipher = cipher_from_settings(sync_settings)
        user_id = await add_plain_user(sessions, "ann@example.com")
        async with sessions.begin() as session:
            account = GoogleAccount(
                user_id=user_id,
                google_email="ann@example.com",
                refresh_token_encrypted=cipher.encrypt("1//refresh-token"),
            )
            session.add(account)
            await session.flush()
            account_id = account.id
        await pool.enqueue_job("sync_calendar_account", account_id=account_id)
        await run_burst(await make_worker(sync_settings, [sync_calendar_account], family="sync"))
        assert upstream.requests == 1
    async with sessions() as session:
        stored = await session.get(GoogleAccount, account_id)
        [failed] = list(await session.scalars(select(FailedJob)))
    assert stored is not None and stored.last_error is not None
    assert "client_secret=*** is not valid" in stored.last_error
    assert CLIENT_SECRET not in failed.error_message and "***" in failed.error_message
    assert CLIENT_SECRET not in caplog.text
    assert CLIENT_SECRET not in await redis_text(settings.redis_url)
    assert CLIENT_SECRET not in span_text(spans)


async def test_a_database_error_does_not_carry_the_statement_parameters(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An e-mail the database refuses (no such user): recipient and body are in no record of it."""
    caplog.set_level(logging.INFO)
    recipient, body = "private.person@example.com", "Private medical details follow"
    await pool.enqueue_job("send_email", to=recipient, subject="Results", text=body, user_id=424242)
    from jobs.email import WorkerSettings as EmailWorker

    await run_burst(await make_worker(settings, list(vars(EmailWorker)["_declared_functions"])))
    async with sessions() as session:
        [failed] = list(await session.scalars(select(FailedJob)))
        assert list(await session.scalars(select(OutboundEmail))) == []
    assert failed.error_type == "IntegrityError"
    assert "SQL parameters hidden" in failed.error_message
    for text in (failed.error_message, caplog.text, span_text(spans)):
        assert recipient not in text and "Private medical" not in text


@pytest.mark.usefixtures("engine")
async def test_arq_logs_job_names_and_ids_only_and_keeps_no_arguments_in_results(
    pool: JobsPool, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """ARQ's start line, when kept, names the job and its id; the result has no arguments."""
    caplog.set_level(logging.INFO)
    from tests import sample_jobs

    job = await pool.enqueue_job("test_echo", number=1, label="Private label of a user")
    assert job is not None
    kept = settings.model_copy(update={"log_arq_job_lines": True})
    await run_burst(await make_worker(kept, [sample_jobs.echo]))
    info: Any = await job.result_info()
    assert info.success and info.kwargs == {} and list(info.args) == []
    assert info.result == {"number": 1, "label": "Private label of a user", "try": 1}
    arq_lines = [r.getMessage() for r in caplog.records if r.name == "arq.worker"]
    assert any(f"→ {job.job_id}:test_echo" in line for line in arq_lines), arq_lines
    assert all("Private label" not in line for line in arq_lines), arq_lines


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_worker_process_prints_neither_the_key_nor_job_arguments(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """`arq jobs.ai.WorkerSettings` against a gateway echoing the key: no key, no arguments."""
    async with EchoingUpstream() as upstream:
        task_id = await add_task(
            sessions, await add_user(sessions, "ann@example.com"), next_run_at=DUE
        )
        env = worker_environment(
            settings,
            LLM_BASE_URL=upstream.llm_base_url,
            LLM_API_KEY=LLM_KEY,
            LOG_ARQ_JOB_LINES="true",
        )
        worker = WorkerProcess("ai", env, tmp_path).start()
        try:
            await worker.wait_ready()
            job = await pool.enqueue_job("run_ai_task", task_id=task_id, scheduled_for=DUE)
            assert job is not None
            result = await job.result(timeout=60)
        finally:
            exit_code = worker.stop()
    assert exit_code == 0, worker.output[-3000:]
    assert result["error"] == "LlmError: LLM API HTTP 401: Incorrect API key provided: ***"
    output = worker.output
    assert "run 1 failed: LlmError: LLM API HTTP 401: Incorrect API key provided: ***" in output
    assert LLM_KEY not in output
    messages = [json.loads(line)["message"] for line in output.splitlines() if line.startswith("{")]
    assert any(m.endswith(f"→ {job.job_id}:run_ai_task") for m in messages)  # ARQ's, as JSON
    assert "scheduled_for=" not in output and "task_id=" not in output
