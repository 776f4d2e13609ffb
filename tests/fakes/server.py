"""Serving a fake's ASGI app on a free local port, and injecting failures into it."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from tests.smtp_server import free_port


@dataclass
class Fault:
    """One injected failure: an error response, or a stall before the normal answer."""

    status: int | None = None
    body: Any = None
    retry_after: float | None = None
    stall: float = 0.0
    text: str | None = None

    def response(self) -> Response:
        """The error response of this fault."""
        headers = {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}
        if self.text is not None:
            return Response(self.text, status_code=self.status or 500, headers=headers)
        return JSONResponse(self.body, status_code=self.status or 500, headers=headers)


@dataclass
class RequestLog:
    """Every request a fake answered: monotonic time, path and bearer token, and its headers."""

    entries: list[tuple[float, str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def add(self, path: str, token: str, headers: dict[str, str] | None = None) -> None:
        """Record one request."""
        self.entries.append((time.monotonic(), path, token))
        self.headers.append(headers or {})

    def times(self, path_part: str = "") -> list[float]:
        """Times of the requests whose path contains ``path_part``."""
        return [t for t, path, _ in self.entries if path_part in path]


class FaultQueue:
    """Failures the next requests get, in order, and a delay every request gets."""

    def __init__(self) -> None:
        self._faults: deque[Fault] = deque()
        #: Seconds every request waits before it is answered (a slow network or service).
        self.latency = 0.0

    def add(self, fault: Fault, times: int = 1) -> None:
        """Make the next ``times`` requests get ``fault``."""
        self._faults.extend([fault] * times)

    async def apply(self) -> Response | None:
        """The error response for this request, after any stall; None to answer normally."""
        if self.latency:
            await asyncio.sleep(self.latency)
        if not self._faults:
            return None
        fault = self._faults.popleft()
        if fault.stall:
            await asyncio.sleep(fault.stall)
        return fault.response() if fault.status is not None else None


class LocalServer:
    """Runs an ASGI app with uvicorn in the current event loop on a free port."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start serving and wait until the port accepts connections."""
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        if self._task is not None:
            await self._task
