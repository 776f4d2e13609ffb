"""A family of the backend's own, declared outside ``jobs/`` (``examples.backend.reports``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.backend import reports
from jobs import JobArgumentsError, JobsPool, declare_family, job
from jobs.constants import queue_name
from jobs.db import FailedJob, User, queue_email
from jobs.families import known_families
from jobs.settings import Settings
from tests.fakes.server import LocalServer
from tests.otlp_receiver import OtlpReceiver
from tests.test_observability_process import CONSUMER, start_worker, stop_worker, wait_for
from tests.test_worker_process import worker_environment

ROOT = Path(__file__).resolve().parent.parent


def test_a_family_name_is_checked_and_jobs_need_a_declared_family() -> None:
    """``Reports!`` is refused as a name; ``@job(family="undeclared")`` says to declare it."""
    with pytest.raises(ValueError, match="family name 'Reports!' must be lowercase"):
        declare_family("Reports!")
    with pytest.raises(ValueError, match=r"declare it first with jobs.declare_family\('nope'\)"):

        @job(family="nope")
        async def orphan(ctx: Any) -> None:
            """Never registered."""


def test_the_backends_family_is_known_once_declared() -> None:
    """Importing the backend's module adds ``reports`` after the built-in families."""
    assert reports.REPORTS == "reports"
    assert known_families()[-1] == "reports"
    assert reports.usage_report.__job_spec__.queue == "jobs:queue:reports"  # type: ignore[attr-defined]


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m jobs …`` in a fresh process from the project root, with ``env`` added."""
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_producers_find_the_family_through_job_family_modules() -> None:
    """Only with ``JOB_FAMILY_MODULES`` does a fresh producer know ``usage_report``; typos fail."""
    listed = cli("jobs", JOB_FAMILY_MODULES="examples.backend.reports")
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if "usage_report" in line]
    assert "jobs:queue:reports" in line
    assert "usage_report" not in cli("jobs").stdout
    broken = cli("jobs", JOB_FAMILY_MODULES="examples.backend.reprots")
    assert broken.returncode != 0
    assert "JOB_FAMILY_MODULES: cannot import 'examples.backend.reprots'" in broken.stderr


class Webhook:
    """The backend's report webhook: answers 503 to the first post, then records posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.refused = 0
        self.server = LocalServer(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> Response:
        """The webhook endpoint."""
        if not self.refused:
            self.refused += 1
            return JSONResponse({"error": "busy"}, status_code=503)
        self.posts.append(await request.json())
        return JSONResponse({"ok": True})

    @property
    def url(self) -> str:
        """Where the report is posted."""
        return f"{self.server.url}/hook"


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    """A running webhook server."""
    hook = Webhook()
    await hook.server.start()
    yield hook
    await hook.server.stop()


async def add_user(sessions: async_sessionmaker[AsyncSession]) -> int:
    """A user with two queued e-mails; their id."""
    async with sessions.begin() as session:
        user = User(email="ann@example.com", display_name="Ann")
        session.add(user)
        await session.flush()
        for subject in ("one", "two"):
            await queue_email(session, to=user.email, subject=subject, text="x", user_id=user.id)
        return user.id


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_arq_runs_the_backends_family_with_routing_retries_tracing_and_failures(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    webhook: Webhook,
    tmp_path: Path,
) -> None:
    """`arq examples.backend.reports.WorkerSettings` runs usage_report like a built-in job."""
    user_id = await add_user(sessions)
    with pytest.raises(JobArgumentsError, match="user_id"):
        await pool.enqueue_job("usage_report", user_id="ann")
    with OtlpReceiver() as receiver:
        env = worker_environment(settings) | {
            "PYTHONPATH": str(ROOT),
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        worker = start_worker(env, tmp_path, "examples.backend.reports.WorkerSettings")
        try:
            good = await pool.enqueue_job("usage_report", user_id=user_id, webhook_url=webhook.url)
            bad = await pool.enqueue_job("usage_report", user_id=999)
            assert good is not None and bad is not None
            assert await good.result(timeout=60) == {
                "emails": 2,
                "ai_tasks": 0,
                "calendar_events": 0,
            }

            def consumers() -> list[Any]:
                return [s for s in receiver.received() if s.kind == CONSUMER]

            # the failed try's span ends after its failed-job record is written
            await wait_for(lambda: len(consumers()) >= 3, 30, worker)
        finally:
            output = stop_worker(worker)
    assert "reports worker ready on queue jobs:queue:reports" in output
    assert webhook.refused == 1
    assert webhook.posts == [{"user_id": user_id, "emails": 2, "ai_tasks": 0, "calendar_events": 0}]
    good_info = await good.info()
    assert good_info is not None and good_info.job_try == 2  # the 503 was retried

    async with sessions() as session:
        [failure] = list(await session.scalars(select(FailedJob)))
    assert (failure.job_id, failure.job_name, failure.queue) == (
        bad.job_id,
        "usage_report",
        queue_name("reports"),
    )
    assert (failure.error_type, failure.error_message) == ("PermanentJobError", "no user 999")
    tries = sorted(
        (s.attributes["messaging.arq.job.try"], s.attributes["messaging.message.id"])
        for s in consumers()
    )
    assert tries == sorted([(1, good.job_id), (2, good.job_id), (1, bad.job_id)])
    assert {s.name for s in consumers()} == {"process jobs:queue:reports"}
    [failed_span] = [s for s in consumers() if s.attributes["messaging.message.id"] == bad.job_id]
    assert failed_span.trace_id == failure.trace_id
    assert failed_span.attributes["error.type"] == "PermanentJobError"
