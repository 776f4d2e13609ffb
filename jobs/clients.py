"""The clients a worker shares with its jobs: the backend's own, or ones the jobs make.

By default a worker creates its database engine and ``httpx.AsyncClient`` from the settings.
A backend hands over its own with ``WORKER_CLIENTS_FACTORY=myapp.jobs:worker_clients``, naming
a callable that takes the settings and returns an async context manager yielding
:class:`WorkerClients`; the worker enters it at start-up and leaves it at shut-down::

    @asynccontextmanager
    async def worker_clients(settings: jobs.Settings) -> AsyncIterator[WorkerClients]:
        engine = create_async_engine(MY_DATABASE_URL, pool_size=10)
        async with httpx.AsyncClient(headers={"User-Agent": "myapp"}, timeout=20) as http:
            yield WorkerClients(engine=engine, http=http)
        await engine.dispose()

Every family's jobs then use them (``ctx.engine``, ``ctx.sessions``, ``ctx.http``). The engine
is bound to the jobs' schemas (:func:`jobs.db.bind_engine`, sharing its pool); a session factory
given instead is copied onto that binding with ``expire_on_commit=False``, which the jobs rely
on. A client without OpenTelemetry instrumentation gets it, so its requests nest under the job
span; the worker never closes what the backend gave.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.db.engine import bind_engine, create_engine, create_session_factory
from jobs.errors import ConfigurationError
from jobs.http import create_http_client
from jobs.settings import Settings
from jobs.telemetry import instrument_http_client

__all__ = ["ClientsFactory", "SharedClients", "WorkerClients", "load_clients_factory"]


@dataclass(frozen=True)
class WorkerClients:
    """What a backend gives its workers; ``None`` leaves that client to the jobs."""

    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    http: httpx.AsyncClient | None = None


ClientsFactory = Callable[[Settings], AbstractAsyncContextManager[WorkerClients]]


def load_clients_factory(path: str) -> ClientsFactory:
    """The callable ``module:name`` of ``WORKER_CLIENTS_FACTORY``; ConfigurationError if absent."""
    module_name, _, name = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(
            f"WORKER_CLIENTS_FACTORY: cannot load {path!r} ({type(error).__name__}: {error})"
        ) from None
    if not callable(factory):
        raise ConfigurationError(f"WORKER_CLIENTS_FACTORY: {path!r} is not callable")
    return factory  # type: ignore[no-any-return]


def _opened(settings: Settings) -> AbstractAsyncContextManager[WorkerClients]:
    """The factory's context manager, checked: it must yield :class:`WorkerClients`."""
    path = str(settings.worker_clients_factory)
    manager = load_clients_factory(path)(settings)
    if not isinstance(manager, AbstractAsyncContextManager):
        raise ConfigurationError(
            f"WORKER_CLIENTS_FACTORY: {path!r} must return an async context manager "
            "(e.g. an @asynccontextmanager function) yielding jobs.WorkerClients"
        )

    @asynccontextmanager
    async def checked() -> AsyncIterator[WorkerClients]:
        async with manager as given:
            if not isinstance(given, WorkerClients):
                raise ConfigurationError(
                    f"WORKER_CLIENTS_FACTORY: {path!r} must yield jobs.WorkerClients"
                )
            yield given

    return checked()


def _sessions_on(
    engine: AsyncEngine, given: async_sessionmaker[AsyncSession] | None
) -> async_sessionmaker[AsyncSession]:
    if given is None:
        return create_session_factory(engine)
    options = {**given.kw, "bind": engine, "expire_on_commit": False}
    return async_sessionmaker(class_=given.class_, **options)


@dataclass
class SharedClients:
    """A worker's engine, session factory and HTTP client, and how to let go of them."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    stack: AsyncExitStack

    @classmethod
    async def open(cls, settings: Settings) -> SharedClients:
        """The backend's clients (``WORKER_CLIENTS_FACTORY``) where given, the jobs' otherwise."""
        stack = AsyncExitStack()
        try:
            given = WorkerClients()
            if settings.worker_clients_factory:
                given = await stack.enter_async_context(_opened(settings))
            bind = given.engine or (given.sessions.kw.get("bind") if given.sessions else None)
            if isinstance(bind, AsyncEngine):
                engine = bind_engine(bind, settings)
            else:
                engine = create_engine(settings)
                stack.push_async_callback(engine.dispose)
            http = given.http
            if http is None:
                http = create_http_client(settings)
                stack.push_async_callback(http.aclose)
            if not getattr(http, "_is_instrumented_by_opentelemetry", False):
                instrument_http_client(http)
            return cls(engine, _sessions_on(engine, given.sessions), http, stack)
        except BaseException:
            await stack.aclose()
            raise

    async def aclose(self) -> None:
        """Close what the jobs made and leave the backend's context manager."""
        await self.stack.aclose()
