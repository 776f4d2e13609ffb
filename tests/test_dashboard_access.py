"""Who may see the dashboard and what a POST needs: off by default, credentials, CSRF, headers."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import JobsPool
from jobs.dashboard import create_dashboard, dashboard_router
from jobs.db.models import FailedJob
from jobs.db.sync_models import AccountState
from jobs.errors import ConfigurationError
from jobs.failures import record_failed_job
from jobs.settings import Settings, load_settings
from jobs.web import make_lifespan
from tests.dashboard_support import (
    LLM_KEY,
    PASSWORD,
    USERNAME,
    account_state,
    add_google_account,
    client_of,
    csrf_token_in,
    dashboard_settings,
)

pytestmark = pytest.mark.usefixtures("engine")

PAGES = ["/", "/overview/live", "/queues/email", "/failed", "/schedules", "/accounts"]


async def _failed_record(sessions: async_sessionmaker[AsyncSession], note: str = "x") -> None:
    await record_failed_job(
        sessions,
        job_id=f"job-{len(note)}",
        job_name="send_email",
        queue="jobs:queue:email",
        arguments={"to": "a@example.com", "subject": "s", "text": note},
        error_type="EmailBounced",
        error_message="550 no such user",
        tries=1,
        trace_id=None,
    )


async def _records(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(FailedJob)) or 0)


async def test_the_dashboard_is_off_unless_enabled(settings: Settings) -> None:
    """With the default settings every page and action answers 404, credentials or not."""
    app = create_dashboard(settings.model_copy(update={"dashboard_username": USERNAME}))
    async with app.router.lifespan_context(app), client_of(app) as client:
        for path in PAGES:
            assert (await client.get(path)).status_code == 404, path
        assert (await client.post("/failed/purge")).status_code == 404


def test_enabled_without_credentials_refuses_to_start(settings: Settings) -> None:
    """DASHBOARD_ENABLED without a password and without the backend's dependency is refused."""
    with pytest.raises(ConfigurationError, match="DASHBOARD_USERNAME and DASHBOARD_PASSWORD"):
        create_dashboard(settings.model_copy(update={"dashboard_enabled": True}))


async def test_wrong_or_missing_credentials_get_401_and_right_ones_every_page(
    settings: Settings,
) -> None:
    """No or wrong Basic credentials: 401 with a challenge on every page; the right ones: 200."""
    app = create_dashboard(dashboard_settings(settings))
    async with app.router.lifespan_context(app):
        for auth in (None, (USERNAME, "wrong password!"), ("someone", PASSWORD)):
            async with client_of(app, auth=auth) as client:
                for path in PAGES:
                    response = await client.get(path)
                    assert response.status_code == 401, (auth, path)
                    assert response.headers["www-authenticate"].startswith("Basic")
        async with client_of(app) as client:
            for path in PAGES:
                response = await client.get(path)
                assert response.status_code == 200, path
                assert response.headers["cache-control"] == "no-store"


async def test_every_answer_carries_the_security_headers(settings: Settings) -> None:
    """Pages, static files, 401 and 404 answers: CSP without unsafe-inline, no framing, nosniff."""
    app = create_dashboard(dashboard_settings(settings))
    async with app.router.lifespan_context(app):
        async with client_of(app) as client:
            answers = [
                await client.get("/"),
                await client.get("/static/dashboard.js"),
                await client.get("/static/dashboard.css"),
                await client.get("/static/../settings.py"),
                await client.get("/failed/999"),
            ]
        async with client_of(app, auth=None) as client:
            answers.append(await client.get("/"))
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 404, 401]
    for answer in answers:
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    assert answers[1].headers["content-type"].startswith("text/javascript")


async def test_a_post_without_or_with_a_wrong_csrf_token_changes_nothing(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Purge without a token, with a forged one or another session's: 403, records kept."""
    await _failed_record(sessions)
    app = create_dashboard(dashboard_settings(settings))
    async with app.router.lifespan_context(app):
        async with client_of(app) as other:
            other_token = csrf_token_in((await other.get("/failed")).text)
        async with client_of(app) as client:
            token = csrf_token_in((await client.get("/failed")).text)
            refused = [
                await client.post("/failed/purge"),
                await client.post("/failed/purge", data={"csrf_token": "0" * 64}),
                await client.post("/failed/purge", data={"csrf_token": other_token}),
                await client.post("/failed/1/requeue", data={"csrf_token": token[:-1]}),
            ]
            assert [r.status_code for r in refused] == [403] * 4
            assert await _records(sessions) == 1
            client.cookies.clear()  # the right token, but no session cookie
            assert (
                await client.post("/failed/purge", data={"csrf_token": token})
            ).status_code == 403
            assert await _records(sessions) == 1
        async with client_of(app) as client:
            token = csrf_token_in((await client.get("/failed")).text)
            done = await client.post("/failed/purge", data={"csrf_token": token})
    assert done.status_code == 303 and "notice=purged" in done.headers["location"]
    assert await _records(sessions) == 0


async def test_mounted_in_a_backend_with_its_own_auth_dependency(
    settings: Settings, pool: JobsPool
) -> None:
    """Included in a backend's app, the backend's dependency decides; Basic credentials do not."""

    def require_admin(x_admin: str | None = Header(None)) -> str:
        if x_admin != "yes":
            raise HTTPException(403, "admins only")
        return "admin"

    backend = FastAPI(lifespan=make_lifespan(settings))
    backend.include_router(
        dashboard_router(dashboard_settings(settings), authorize=Depends(require_admin).dependency),
        prefix="/admin/jobs",
    )
    async with backend.router.lifespan_context(backend):
        async with client_of(backend) as client:
            assert (await client.get("/admin/jobs/")).status_code == 403
            page = await client.get("/admin/jobs/failed", headers={"x-admin": "yes"})
        async with client_of(backend, auth=None) as client:
            assert (await client.get("/admin/jobs/", headers={"x-admin": "yes"})).status_code == 200
    assert page.status_code == 200
    assert 'href="http://dashboard.test/admin/jobs/schedules"' in page.text
    assert page.headers["content-security-policy"]


async def test_mounted_as_an_app_under_a_prefix(settings: Settings) -> None:
    """``app.mount(prefix, create_dashboard())`` serves its pages and links under the prefix."""
    dashboard = create_dashboard(dashboard_settings(settings))
    backend = FastAPI()
    backend.mount("/ops/jobs", dashboard)
    try:
        async with client_of(backend) as client:
            page = await client.get("/ops/jobs/")
            script = await client.get("/ops/jobs/static/dashboard.js")
            assert (await client.get("/ops/jobs/", auth=None)).status_code == 401
    finally:
        await dashboard.state.dashboard.aclose()
    assert page.status_code == 200 and script.status_code == 200
    assert 'src="http://dashboard.test/ops/jobs/static/dashboard.js"' in page.text
    assert "jobs_dashboard_session" in page.headers["set-cookie"]
    assert "Path=/ops/jobs" in page.headers["set-cookie"]


async def test_no_page_shows_a_configured_secret_or_a_secret_argument(
    settings: Settings, pool: JobsPool, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A secret argument and the LLM key inside a note are masked on the queue and job pages."""
    import tests.sample_jobs  # noqa: F401 - declares test_broken

    job = await pool.enqueue_job(
        "test_broken", password="hunter2-password", note=f"key {LLM_KEY} inside"
    )
    assert job is not None
    await _failed_record(sessions, note=f"echo {LLM_KEY}")
    app = create_dashboard(dashboard_settings(settings))
    async with app.router.lifespan_context(app), client_of(app) as client:
        pages = [
            await client.get("/queues/email"),
            await client.get(f"/job/{job.job_id}"),
            await client.get("/failed"),
            await client.get("/failed/1"),
        ]
    for page in pages:
        assert page.status_code == 200, page.url
        assert "hunter2-password" not in page.text and LLM_KEY not in page.text
        assert PASSWORD not in page.text
    assert (
        "&#34;password&#34;: &#34;***&#34;" in pages[0].text or '"password": "***"' in pages[1].text
    )
    assert "key *** inside" in pages[1].text


async def test_the_session_cookie_is_http_only_and_same_site(settings: Settings) -> None:
    """The session cookie is HttpOnly and SameSite=Strict, so other sites cannot ride it."""
    app = create_dashboard(dashboard_settings(settings))
    async with app.router.lifespan_context(app), client_of(app) as client:
        cookie = (await client.get("/")).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"dashboard_username": "ops"}, "DASHBOARD_USERNAME and DASHBOARD_PASSWORD"),
        ({"dashboard_username": "ops", "dashboard_password": "short"}, "at least 12"),
        ({"dashboard_session_secret": "too short"}, "DASHBOARD_SESSION_SECRET"),
        ({"dashboard_jaeger_url": "jaeger:16686"}, "DASHBOARD_JAEGER_URL: must be an http"),
        ({"dashboard_refresh_seconds": "0.1"}, "DASHBOARD_REFRESH_SECONDS"),
    ],
)
def test_dashboard_settings_refuse_unsafe_or_malformed_values(
    values: dict[str, str], error: str
) -> None:
    """A user without a password, a short password or secret, a bad URL: one line naming it."""
    with pytest.raises(ConfigurationError, match=error):
        load_settings(**values)


async def test_abort_needs_the_sessions_csrf_token(settings: Settings, pool: JobsPool) -> None:
    """An abort without the token leaves the queued job alone; with it, the abort is requested."""
    job = await pool.enqueue_job("backup_one_user", user_id=1)
    assert job is not None
    handle = await pool.job(job.job_id)
    app = create_dashboard(dashboard_settings(settings))
    async with app.router.lifespan_context(app), client_of(app) as client:
        token = csrf_token_in((await client.get(f"/job/{job.job_id}")).text)
        refused = await client.post(f"/abort/{job.job_id}", data={"csrf_token": "forged"})
        assert refused.status_code == 403
        assert not (await handle.report()).abort_requested
        done = await client.post(f"/abort/{job.job_id}", data={"csrf_token": token})
        again = await client.post("/abort/no-such-job", data={"csrf_token": token})
    assert done.status_code == 303 and "notice=aborted" in done.headers["location"]
    assert (await handle.report()).abort_requested
    assert again.status_code == 409


async def test_reactivate_needs_the_sessions_csrf_token(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Reactivate without the token leaves the account in error; with it, the account is active."""
    account_id = await add_google_account(sessions, AccountState.ERROR, "HTTP 500 from Google")
    url = f"/accounts/google/{account_id}/reactivate"
    app = create_dashboard(dashboard_settings(settings))
    async with app.router.lifespan_context(app), client_of(app) as client:
        page = (await client.get("/accounts")).text
        token = csrf_token_in(page)
        assert (await client.post(url)).status_code == 403
        assert await account_state(sessions, account_id) == "error"
        done = await client.post(url, data={"csrf_token": token})
        unknown = await client.post("/accounts/google/999/reactivate", data={"csrf_token": token})
        wrong_kind = await client.post(
            f"/accounts/slack/{account_id}/reactivate", data={"csrf_token": token}
        )
    assert "HTTP 500 from Google" in page
    assert done.status_code == 303 and "notice=reactivated" in done.headers["location"]
    assert await account_state(sessions, account_id) == "active"
    assert (unknown.status_code, wrong_kind.status_code) == (404, 404)
