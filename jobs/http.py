"""The shared ``httpx.AsyncClient`` of a worker process, and sending with short retries.

:func:`send_with_retries` retries, inside one job try, what is transient — connection errors,
timeouts, 429 (honouring ``Retry-After``) and 5xx — with exponential backoff and jitter, and
nothing else. When the server asks for a wait longer than ``max_wait``, or the attempts run
out, it raises :class:`jobs.errors.TransientJobError` (carrying ``retry_after``) so that the
job's own retry policy takes over instead of holding a worker slot. Every retry leaves a
WARNING line and an ``http.retry`` event on the current span (:mod:`jobs.notices`): method and
host (never the path or query, which may hold ids or tokens), what was retried, the attempt and
the wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

import httpx

from jobs.errors import TransientJobError
from jobs.metrics import METRICS
from jobs.notices import notice
from jobs.retry import TRANSIENT_HTTP_STATUSES, retry_after_seconds
from jobs.settings import Settings

__all__ = ["create_http_client", "is_transient_response", "send_with_retries"]

logger = logging.getLogger(__name__)


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


def is_transient_response(response: httpx.Response) -> bool:
    """Whether a response says "later" (429, 5xx and the like) rather than "never"."""
    return response.status_code in TRANSIENT_HTTP_STATUSES


async def send_with_retries(
    client: httpx.AsyncClient,
    build_request: Callable[[], httpx.Request],
    *,
    attempts: int = 4,
    backoff_base: float = 0.5,
    max_wait: float = 30.0,
    is_transient: Callable[[httpx.Response], bool] = is_transient_response,
    before_attempt: Callable[[], Awaitable[object]] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> httpx.Response:
    """Send the request ``build_request`` makes, retrying transient failures a few times.

    Returns the first response that is not transient (the caller judges 4xx). Raises
    ``TransientJobError`` when transient failures outlast ``attempts`` or a wait over
    ``max_wait`` is asked for. ``is_transient`` widens what counts as "later" for a service
    (Google's rate-limit 403s); ``before_attempt`` runs before every attempt (a shared rate
    limiter).
    """
    for attempt in range(1, attempts + 1):
        delay = min(max_wait, backoff_base * 2 ** (attempt - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
        if before_attempt is not None:
            await before_attempt()
        request = build_request()
        status: int | None = None
        try:
            response = await client.send(request)
        except httpx.TransportError as error:
            retried = type(error).__qualname__
            if attempt == attempts:
                raise TransientJobError(
                    f"{type(error).__name__} after {attempts} attempts"
                ) from error
        else:
            if not is_transient(response):
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
            status = response.status_code
            retried = str(status)
        METRICS.waited(delay, "http_retry", retried)
        _retrying(request, retried, status, attempt, attempts, delay)
        await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _retrying(
    request: httpx.Request,
    retried: str,
    status: int | None,
    attempt: int,
    attempts: int,
    delay: float,
) -> None:
    """Tell the log and the current span that ``request`` is sent again after ``delay``."""
    host = request.url.host
    attributes: dict[str, str | int | float] = {
        "http.request.method": request.method,
        "server.address": host,
        "error.type": retried,
    }
    if status is not None:
        attributes["http.response.status_code"] = status
    attributes.update({"jobs.attempt": attempt, "jobs.wait.seconds": delay})
    what = f"HTTP {status}" if status is not None else retried
    notice(
        logger,
        "http.retry",
        f"{request.method} {host}: {what}, attempt {attempt} of {attempts}, "
        f"retrying in {delay:.2f} s",
        attributes,
    )
