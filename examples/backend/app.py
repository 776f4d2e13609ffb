"""The example backend's FastAPI app: its own users, and the jobs through ``jobs.api``.

Run it with ``uvicorn examples.backend.app:app`` after ``python -m examples.backend.migrate``.
Every handler opens a session of the backend's own engine, calls the service API in it and
commits; what the jobs must do follows the commit. The caller is named by ``X-User-Id`` and an
operator by ``X-Role: admin`` — stand-ins for the backend's real authentication.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

import jobs.api
from examples.backend import reports  # noqa: F401 - declares the reports family and its jobs
from examples.backend.models import Customer
from jobs import Settings, get_settings
from jobs.web import JobsPoolDep, health_router, job_control_router, make_lifespan

__all__ = ["app", "create_app"]


async def backend_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session of the backend's own engine for one request."""
    async with request.app.state.sessions() as session:
        yield session


async def current_user(x_user_id: Annotated[int | None, Header()] = None) -> int:
    """The signed-in user (the example trusts a header; a real backend checks a token)."""
    if x_user_id is None:
        raise HTTPException(status_code=401, detail="sign in first")
    return x_user_id


async def require_admin(x_role: Annotated[str | None, Header()] = None) -> None:
    """Only operators control jobs."""
    if x_role != "admin":
        raise HTTPException(status_code=403, detail="operators only")


Session = Annotated[AsyncSession, Depends(backend_session)]
UserId = Annotated[int, Depends(current_user)]


class SignUp(BaseModel):
    """A new user."""

    email: str
    display_name: str
    timezone: str = "UTC"


class GoogleGrant(BaseModel):
    """Google's token answer for the address the user consented with."""

    google_email: str
    access_token: str
    refresh_token: str | None = None
    expires_in: int = 3600


class NotionGrantBody(BaseModel):
    """Notion's token answer."""

    workspace_id: str
    workspace_name: str = ""
    access_token: str


class SyncNow(BaseModel):
    """Which accounts to sync now (all by default)."""

    kind: Literal["google", "notion"] | None = None
    account_id: int | None = None


class TaskBody(BaseModel):
    """An AI task, or the fields to change in one."""

    title: str | None = None
    instruction: str | None = None
    run_at: dt.datetime | None = None
    cron_expression: str | None = None
    timezone: str | None = None
    idempotency_key: str | None = None


class ReportRequest(BaseModel):
    """A usage report of the user's data, now or later."""

    webhook_url: str | None = None
    delay_seconds: float = 0.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """The example backend, on the jobs' settings (its database is ``DATABASE_URL``)."""
    resolved = settings or get_settings()
    engine = create_async_engine(resolved.resolved_database_url)
    jobs_lifespan = make_lifespan(resolved, engine=engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with jobs_lifespan(app):
            yield
        await jobs.api.wait_for_enqueues()
        await engine.dispose()

    app = FastAPI(title="example backend", lifespan=lifespan)
    app.include_router(health_router)
    app.include_router(job_control_router(authorize=require_admin), prefix="/admin")

    @app.exception_handler(jobs.api.InvalidInputError)
    async def invalid(_: Request, error: jobs.api.InvalidInputError) -> JSONResponse:
        return JSONResponse({"detail": error.errors}, status_code=422)

    @app.exception_handler(jobs.api.NotFoundError)
    async def not_found(_: Request, error: jobs.api.NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.post("/signup", status_code=201)
    async def sign_up(body: SignUp, session: Session, pool: JobsPoolDep) -> dict[str, Any]:
        """Create the user and queue the welcome e-mail in one transaction."""
        customer = Customer(email=body.email, display_name=body.display_name)
        customer.timezone = body.timezone
        session.add(customer)
        try:
            await session.flush()
        except IntegrityError:
            raise HTTPException(status_code=409, detail="that address has an account") from None
        welcome = await jobs.api.queue_transactional_email(
            session,
            pool,
            to=body.email,
            subject=f"Welcome, {body.display_name}",
            text="Your assistant is ready.",
            user_id=customer.id,
            dedupe_key=f"welcome:{customer.id}",
            settings=resolved,
        )
        await session.commit()
        return {"user_id": customer.id, "email_id": welcome.email_id}

    @app.post("/me/google", status_code=201)
    async def connect_google(
        body: GoogleGrant, user: UserId, session: Session, pool: JobsPoolDep
    ) -> jobs.api.Connection:
        """Connect the user's Google account; its first sync follows the commit."""
        connection = await jobs.api.connect_google_account(
            session, pool, user_id=user, **body.model_dump(), settings=resolved
        )
        await session.commit()
        return connection

    @app.delete("/me/google/{account_id}")
    async def disconnect_google(
        account_id: int, user: UserId, session: Session
    ) -> jobs.api.Disconnection:
        """Remove the account, its tokens and its calendars."""
        gone = await jobs.api.disconnect_google_account(
            session, user_id=user, account_id=account_id, settings=resolved
        )
        await session.commit()
        return gone

    @app.post("/me/notion", status_code=201)
    async def connect_notion(
        body: NotionGrantBody, user: UserId, session: Session, pool: JobsPoolDep
    ) -> jobs.api.Connection:
        """Connect the user's Notion workspace; its first sync follows the commit."""
        connection = await jobs.api.connect_notion_integration(
            session, pool, user_id=user, **body.model_dump(), settings=resolved
        )
        await session.commit()
        return connection

    @app.delete("/me/notion/{integration_id}")
    async def disconnect_notion(
        integration_id: int, user: UserId, session: Session
    ) -> jobs.api.Disconnection:
        """Remove the integration, its token and its pages."""
        gone = await jobs.api.disconnect_notion_integration(
            session, user_id=user, integration_id=integration_id, settings=resolved
        )
        await session.commit()
        return gone

    @app.post("/me/sync", status_code=202)
    async def sync_now(
        body: SyncNow, user: UserId, session: Session, pool: JobsPoolDep
    ) -> list[jobs.api.SyncRequest]:
        """Sync the user's accounts now."""
        return await jobs.api.request_sync(
            session, pool, user_id=user, **body.model_dump(), settings=resolved
        )

    @app.post("/me/tasks", status_code=201)
    async def create_task(body: TaskBody, user: UserId, session: Session) -> jobs.api.AiTaskInfo:
        """Create an AI task; the scheduler runs it when it is due."""
        task, _ = await jobs.api.create_ai_task(
            session, user_id=user, **body.model_dump(exclude_unset=True), settings=resolved
        )
        await session.commit()
        return task

    @app.patch("/me/tasks/{task_id}")
    async def change_task(
        task_id: int, body: TaskBody, user: UserId, session: Session
    ) -> jobs.api.AiTaskInfo:
        """Change a task's text or schedule."""
        task = await jobs.api.update_ai_task(
            session,
            user_id=user,
            task_id=task_id,
            **body.model_dump(exclude_unset=True),
            settings=resolved,
        )
        await session.commit()
        return task

    @app.post("/me/tasks/{task_id}/{action}")
    async def pause_or_resume(
        task_id: int, action: Literal["pause", "resume"], user: UserId, session: Session
    ) -> jobs.api.AiTaskInfo:
        """Pause or resume a task."""
        change = jobs.api.pause_ai_task if action == "pause" else jobs.api.resume_ai_task
        task = await change(session, user_id=user, task_id=task_id, settings=resolved)
        await session.commit()
        return task

    @app.delete("/me/tasks/{task_id}")
    async def delete_task(task_id: int, user: UserId, session: Session) -> dict[str, bool]:
        """Delete a task and its run records."""
        deleted = await jobs.api.delete_ai_task(
            session, user_id=user, task_id=task_id, settings=resolved
        )
        await session.commit()
        return {"deleted": deleted}

    @app.post("/me/reports", status_code=202)
    async def request_report(
        body: ReportRequest, user: UserId, pool: JobsPoolDep
    ) -> dict[str, str]:
        """Enqueue a job of the backend's own family (``reports``)."""
        job = await pool.enqueue_job(
            "usage_report",
            user_id=user,
            webhook_url=body.webhook_url,
            _defer_by=body.delay_seconds or None,
        )
        assert job is not None
        return {"job_id": job.job_id}

    return app


app = create_app()
