"""The shared ``httpx.AsyncClient`` of a worker process, and sending with short retries.

:func:`send_with_retries` retries, inside one job try, what is transient — connection errors,
timeouts, 429 (honouring ``Retry-After``) and 5xx — with exponential backoff and jitter, and
nothing else. When the server asks for a wait longer than ``max_wait``, or the attempts run
out, it raises :class:`jobs.errors.TransientJobError` (carrying ``retry_after``) so that the
job's own retry policy takes over instead of holding a worker slot.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import httpx

from jobs.errors import TransientJobError
from jobs.retry import TRANSIENT_HTTP_STATUSES
from jobs.settings import Settings

__all__ = ["create_http_client", "retry_after_seconds", "send_with_retries"]


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """One client per worker process, with timeouts and connection limits from the settings."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout, connect=min(10.0, settings.http_timeout)),
        limits=httpx.Limits(
            max_connections=settings.http_max_connections,
            max_keepalive_connections=max(1, settings.http_max_connections // 5),
        ),
        headers={"User-Agent": "assistant-jobs/0.1"},
        follow_redirects=False,
    )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` of a response in seconds (delta-seconds form), if it has one."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def send_with_retries(
    client: httpx.AsyncClient,
    build_request: Callable[[], httpx.Request],
    *,
    attempts: int = 4,
    backoff_base: float = 0.5,
    max_wait: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> httpx.Response:
    """Send the request ``build_request`` makes, retrying transient failures a few times.

    Returns the first response that is not transient (the caller judges 4xx). Raises
    ``TransientJobError`` when transient failures outlast ``attempts`` or a wait over
    ``max_wait`` is asked for.
    """
    for attempt in range(1, attempts + 1):
        delay = min(max_wait, backoff_base * 2 ** (attempt - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
        try:
            response = await client.send(build_request())
        except httpx.TransportError as error:
            if attempt == attempts:
                raise TransientJobError(
                    f"{type(error).__name__} after {attempts} attempts"
                ) from error
        else:
            if response.status_code not in TRANSIENT_HTTP_STATUSES:
                return response
            await response.aread()
            asked = retry_after_seconds(response)
            if asked is not None and asked > max_wait:
                raise TransientJobError(
                    f"HTTP {response.status_code}; server asked to wait {asked:g}s",
                    retry_after=asked,
                )
            if attempt == attempts:
                raise TransientJobError(
                    f"HTTP {response.status_code} after {attempts} attempts", retry_after=asked
                )
            delay = max(delay, asked or 0.0)
        await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
