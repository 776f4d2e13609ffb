"""A backend's clients for the workers, as ``WORKER_CLIENTS_FACTORY`` names them in the tests.

Each factory remembers what it made, so a test can tell that the jobs used exactly these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as backend_engine

from jobs.clients import WorkerClients
from jobs.settings import Settings

#: Header the backend's HTTP client sends on every request.
BACKEND_HEADER = ("X-Backend", "assistant-backend")

made_engines: list[AsyncEngine] = []
made_clients: list[httpx.AsyncClient] = []
hooked_paths: list[str] = []


class BackendSession(AsyncSession):
    """The backend's own session class."""


async def _note(request: httpx.Request) -> None:
    hooked_paths.append(request.url.path)


@asynccontextmanager
async def worker_clients(settings: Settings) -> AsyncIterator[WorkerClients]:
    """The backend's engine and an HTTP client with its own header and request hook."""
    engine = backend_engine(settings.resolved_database_url)
    made_engines.append(engine)
    async with httpx.AsyncClient(
        headers=dict([BACKEND_HEADER]), event_hooks={"request": [_note]}, timeout=5.0
    ) as http:
        made_clients.append(http)
        yield WorkerClients(engine=engine, http=http)
    await engine.dispose()


@asynccontextmanager
async def worker_sessions(settings: Settings) -> AsyncIterator[WorkerClients]:
    """Only a session factory of the backend's (its own class, expiring on commit)."""
    engine = backend_engine(settings.resolved_database_url)
    made_engines.append(engine)
    yield WorkerClients(sessions=async_sessionmaker(engine, class_=BackendSession))
    await engine.dispose()


def not_a_factory(settings: Settings) -> None:
    """A callable that does not return a context manager of WorkerClients."""
