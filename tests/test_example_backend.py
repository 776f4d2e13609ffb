"""The example backend end to end over HTTP: its own users and history, the jobs beside them.

It signs a user up (welcome e-mail in the same transaction), connects a Google account (the
first sync discovers the calendars), creates an AI task, runs a job of its own family, aborts
one, and keeps its Alembic history — on SQLite and on PostgreSQL (jobs in schema ``jobs``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from examples.backend import reports
from examples.backend.app import create_app
from examples.backend.clients import USER_AGENT
from examples.backend.migrate import migrate_everything
from jobs.api import wait_for_enqueues
from jobs.db import CalendarEvent, OutboundEmail, create_engine, create_session_factory
from jobs.settings import Settings
from jobs.sync import generate_key
from tests.conftest import (
    POSTGRES_ADMIN_DSN,
    POSTGRES_TEST_DB,
    POSTGRES_URL,
    make_worker,
    run_burst,
)
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import SYNC_JOBS, sync_settings

EXAMPLE_DB = f"{POSTGRES_TEST_DB}_example"


async def fresh_database(settings: Settings, tmp_path: Path) -> Settings:
    """Settings on an empty database laid out as the example documents it."""
    if not settings.resolved_database_url.startswith("postgresql"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'backend.db'}"
        return settings.model_copy(update={"database_url": url, "users_schema": "main"})
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {EXAMPLE_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {EXAMPLE_DB}")
    finally:
        await admin.close()
    url = POSTGRES_URL.replace(f"/{POSTGRES_TEST_DB}", f"/{EXAMPLE_DB}")
    layout = {"database_schema": "jobs", "users_schema": "public"}
    return settings.model_copy(update={"database_url": url, **layout})


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogleCalendar]:
    """A running fake Google Calendar with one event on its primary calendar."""
    async with FakeGoogleCalendar() as fake:
        fake.put_event("primary", summary="dentist")
        yield fake


@pytest.fixture
async def backend_settings(
    settings: Settings, tmp_path: Path, google: FakeGoogleCalendar
) -> Settings:
    """The example's settings: a fresh, migrated database, the fake Google, an encryption key."""
    async with FakeNotion() as notion:
        configured = sync_settings(
            await fresh_database(settings, tmp_path),
            google,
            notion,
            token_encryption_key=SecretStr(generate_key()),
            worker_clients_factory="examples.backend.clients:worker_clients",
        )
    await migrate_everything(configured)
    return configured


async def test_the_example_backend_uses_the_jobs_through_its_api(
    backend_settings: Settings, google: FakeGoogleCalendar, redis_url: str
) -> None:
    """Sign-up, Google, an AI task, its own family and an abort, all over HTTP.

    The workers run on the backend's clients (``examples.backend.clients``).
    """
    app = create_app(backend_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://backend") as http:
            assert (await http.get("/health/ready")).json()["status"] == "ok"

            signed_up = await http.post(
                "/signup",
                json={
                    "email": "ann@example.com",
                    "display_name": "Ann",
                    "timezone": "Europe/Berlin",
                },
            )
            assert signed_up.status_code == 201
            user = {"X-User-Id": str(signed_up.json()["user_id"])}
            twice = await http.post(
                "/signup", json={"email": "ann@example.com", "display_name": "Ann again"}
            )
            assert twice.status_code == 409

            access, refresh = google.grant()
            grant = {"google_email": google.owner, "access_token": access, "refresh_token": refresh}
            connected = await http.post("/me/google", json=grant, headers=user)
            assert connected.status_code == 201, connected.text
            refused = await http.post(
                "/me/google", json={**grant, "google_email": "no-at-sign"}, headers=user
            )
            assert refused.status_code == 422
            assert refused.json()["detail"][0]["loc"] == ["google_email"]

            task = await http.post(
                "/me/tasks",
                json={"instruction": "Plan my week", "cron_expression": "0 8 * * 1"},
                headers=user,
            )
            assert task.status_code == 201 and task.json()["next_run_at"] is not None
            bad_task = await http.post(
                "/me/tasks",
                json={"instruction": "x", "cron_expression": "0 25 * * *"},
                headers=user,
            )
            assert bad_task.status_code == 422

            report = (await http.post("/me/reports", json={}, headers=user)).json()
            later = await http.post("/me/reports", json={"delay_seconds": 3600}, headers=user)
            later_id = later.json()["job_id"]
            admin = {"X-Role": "admin"}
            assert (
                await http.post(f"/admin/jobs/{later_id}/abort", headers=user)
            ).status_code == 403
            assert (
                await http.post(f"/admin/jobs/{later_id}/abort", headers=admin)
            ).status_code == 202

            await wait_for_enqueues()
            await run_burst(await make_worker(backend_settings, SYNC_JOBS, family="sync"))
            await run_burst(
                await make_worker(backend_settings, [reports.usage_report], family="reports")
            )

            results = [
                (await http.get(f"/admin/jobs/{job_id}/result", headers=admin)).json()
                for job_id in (connected.json()["sync_job_id"], report["job_id"])
            ]
            aborted = (await http.get(f"/admin/jobs/{later_id}", headers=admin)).json()
            gone = await http.delete(f"/me/google/{connected.json()['account_id']}", headers=user)

    assert results[0]["result"]["status"] == "synced"
    assert {h["user-agent"] for h in google.log.headers if h} == {USER_AGENT}  # its client
    assert results[1]["result"] == {"emails": 1, "ai_tasks": 1, "calendar_events": 1}
    assert aborted["state"] == "aborted"
    assert gone.json()["deleted"] == {"events": 1, "calendars": 1}

    jobs_engine = create_engine(backend_settings)
    backend_engine = create_async_engine(backend_settings.resolved_database_url)
    try:
        async with create_session_factory(jobs_engine)() as session:
            subjects = list(await session.scalars(select(OutboundEmail.subject)))
            events = list(await session.scalars(select(CalendarEvent.summary)))
        async with backend_engine.connect() as connection:
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            users = (await connection.execute(text("SELECT email FROM users"))).scalars().all()
    finally:
        await jobs_engine.dispose()
        await backend_engine.dispose()
    assert subjects == ["Welcome, Ann"]  # the failed second sign-up queued nothing
    assert events == []  # gone with the account
    assert (version, users) == ("b001", ["ann@example.com"])
