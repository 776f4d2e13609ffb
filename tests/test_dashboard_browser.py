"""The dashboard in a real browser, against real Redis and PostgreSQL with jobs in every state."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq.constants import in_progress_key_prefix
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import NO_RETRY, JobContext, job
from jobs.client import JobsPool
from jobs.control import JobState
from jobs.dashboard import create_dashboard
from jobs.db.models import FailedJob
from jobs.db.sync_models import AccountState
from jobs.settings import Settings
from tests.browser import launch_chromium, serve
from tests.conftest import make_worker
from tests.dashboard_support import (
    PASSWORD,
    USERNAME,
    account_state,
    add_google_account,
    dashboard_settings,
)
from tests.sample_jobs import bad_query, echo

pytestmark = [
    pytest.mark.usefixtures("engine"),
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

#: Where the dashboard page's screenshots are written when set (``docs/images``).
SCREENSHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")


@job(family="email", name="test_dashboard_hold", retry=NO_RETRY)
async def hold(ctx: JobContext) -> str:
    """Run until the test releases it: the worker is mid-job meanwhile."""
    for _ in range(1200):  # at most a minute
        if await ctx.pool.exists("release-hold"):
            return "released"
        await asyncio.sleep(0.05)
    return "not released"


@contextlib.asynccontextmanager
async def busy_worker(settings: Settings, pool: JobsPool) -> AsyncIterator[str]:
    """An email worker that ran completed and failed jobs and is now mid-job; the held job's id."""
    for number in range(3):
        await pool.enqueue_job("test_echo", number=number)
    await pool.enqueue_job("test_bad_query")
    held = await pool.enqueue_job("test_dashboard_hold", _defer_by=0.5)
    assert held is not None
    worker = await make_worker(settings, [echo, bad_query, hold], burst=False, max_jobs=1)
    task = asyncio.create_task(worker.main())
    try:
        for _ in range(400):
            if await pool.exists(in_progress_key_prefix + held.job_id):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the held job never started")
        yield held.job_id
    finally:
        await pool.set("release-hold", 1)
        await worker.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _number(page: Any, selector: str) -> int:
    return int((await page.text_content(selector)).strip())


async def test_every_page_loads_its_actions_work_and_the_overview_refreshes_itself(
    settings: Settings, pool: JobsPool, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Pages render real state; Requeue, Abort, Reactivate take effect; the overview updates."""
    expect = pytest.importorskip("playwright.async_api").expect
    dash_settings = dashboard_settings(settings, dashboard_refresh_seconds=1.0)
    account_id = await add_google_account(
        sessions, AccountState.NEEDS_RECONSENT, "invalid_grant: Token has been revoked"
    )
    async with busy_worker(dash_settings, pool) as held_id:
        for user in range(4):
            await pool.enqueue_job("backup_one_user", user_id=user + 1)
        deferred = await pool.enqueue_job("backup_one_user", user_id=99, _defer_by=3600)
        assert deferred is not None
        async with serve(create_dashboard(dash_settings)) as base, launch_chromium() as browser:
            context = await browser.new_context(  # type: ignore[attr-defined]
                http_credentials={"username": USERNAME, "password": PASSWORD},
                viewport={"width": 1280, "height": 800},
            )
            page = await context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))

            # overview: queues, the running job, completed and failed work, the live worker
            await page.goto(f"{base}/")
            email = "#families tr[data-family=email]"
            await expect(page.locator(f"{email} [data-field=completed]")).to_have_text(
                "3",
                timeout=30_000,  # the worker's counts arrive with its next beat
            )
            assert await _number(page, f"{email} [data-field=running]") == 1
            assert await _number(page, f"{email} [data-field=failed]") == 1
            assert await _number(page, f"{email} [data-field=workers]") == 1
            files = "#families tr[data-family=files]"
            assert await _number(page, f"{files} [data-field=queued]") == 4
            assert await _number(page, f"{files} [data-field=deferred]") == 1

            # it refreshes by itself: more jobs show up without the page being loaded again
            await page.evaluate("window.notReloaded = true")
            for user in range(3):
                await pool.enqueue_job("backup_one_user", user_id=user + 10)
            await expect(page.locator(f"{files} [data-field=queued]")).to_have_text(
                "7", timeout=15_000
            )
            assert await page.evaluate("window.notReloaded === true")
            if SCREENSHOTS:
                await page.screenshot(path=str(Path(SCREENSHOTS) / "dashboard-overview.png"))

            # queue view: queued and deferred jobs, the running one marked
            await page.click(f"{files} a")
            assert await page.locator("#queue tbody tr").count() == 7
            await page.click("text=deferred")
            assert await page.locator("#queue tbody tr").count() == 1
            assert deferred.job_id in await page.inner_text("#queue")
            await page.goto(f"{base}/queues/email")
            running_row = page.locator(f"#queue tr[data-job-id='{held_id}']")
            assert "running" in await running_row.inner_text()

            # job view: a queued job with its trace link, the running one
            await page.click(f"#queue tr[data-job-id='{held_id}'] a")
            assert await page.inner_text("#job-status") == "in_progress"
            await page.goto(f"{base}/job/{deferred.job_id}")
            assert await page.inner_text("#job-status") == "deferred"
            link = await page.get_attribute("#trace-link", "href")
            assert link is not None and link.startswith("http://jaeger.test:16686/trace/")
            if SCREENSHOTS:
                await page.screenshot(path=str(Path(SCREENSHOTS) / "dashboard-job.png"))

            # failed jobs: the failure is listed, Requeue sends it back to its queue
            await page.goto(f"{base}/failed?family=email")
            assert "test_bad_query" in await page.inner_text("#failed")
            await page.click("#failed button.requeue")
            await page.wait_for_selector(".notice")
            assert "sent back to its queue" in await page.inner_text(".notice")
            async with sessions() as session:
                record = await session.scalar(select(FailedJob))
            assert record is not None and record.requeued_job_id is not None
            requeued = await pool.job(record.requeued_job_id)
            assert (await requeued.info()) is not None  # in Redis: queued, running or done
            assert record.requeued_job_id in await page.inner_text("#requeued")

            # schedules and accounts
            await page.goto(f"{base}/schedules")
            assert await page.locator("#crons tbody tr").count() == 9
            assert "send_daily_email_summary" in await page.inner_text("#crons")
            # accounts: Reactivate sets the account that needs re-consent active again
            await page.goto(f"{base}/accounts")
            row = page.locator(f"#accounts tr[data-account='google-{account_id}']")
            assert await row.locator("[data-field=state]").inner_text() == "needs_reconsent"
            await row.locator("button.reactivate").click()
            await page.wait_for_selector(".notice")
            assert await account_state(sessions, account_id) == "active"
            assert await row.locator("[data-field=state]").inner_text() == "active"

            # abort: the running job is cancelled by its worker, a queued one will never run
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(f"{base}/job/{held_id}")
            await page.click("#abort")
            await page.wait_for_selector(".notice")
            held = await pool.job(held_id)
            for _ in range(300):
                if (await held.report()).state == JobState.ABORTED:
                    break
                await asyncio.sleep(0.05)
            assert (await held.report()).state == JobState.ABORTED
            await page.reload()
            assert await page.inner_text("#job-status") == "aborted"
            assert await page.locator("#abort").count() == 0
            await page.goto(f"{base}/queues/files")
            waiting_id = await page.get_attribute("#queue tbody tr", "data-job-id")
            assert waiting_id is not None
            await page.goto(f"{base}/job/{waiting_id}")
            await page.click("#abort")
            await page.wait_for_selector("#abort-requested")
            report = await (await pool.job(waiting_id)).report()
            assert report.state == JobState.QUEUED and report.abort_requested
            assert problems == []
