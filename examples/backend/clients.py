"""The clients the example backend hands its workers (``WORKER_CLIENTS_FACTORY``).

``WORKER_CLIENTS_FACTORY=examples.backend.clients:worker_clients``: the workers use the
backend's engine and its HTTP client, which names the backend in a header on every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from jobs import Settings, WorkerClients

__all__ = ["USER_AGENT", "worker_clients"]

USER_AGENT = "example-backend/1.0"


@asynccontextmanager
async def worker_clients(settings: Settings) -> AsyncIterator[WorkerClients]:
    """The backend's engine and HTTP client, for every family's workers."""
    engine = create_async_engine(settings.resolved_database_url, pool_pre_ping=True)
    async with httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT}, timeout=httpx.Timeout(20.0, connect=5.0)
    ) as http:
        yield WorkerClients(engine=engine, http=http)
    await engine.dispose()
