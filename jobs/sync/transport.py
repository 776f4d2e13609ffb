"""Sending one API request: the shared rate limit first, then short retries of what is transient.

Transient: connection errors, timeouts, 408/425/429/5xx/529 (``Retry-After`` honoured), and
Google's 403 with reason ``rateLimitExceeded`` or ``userRateLimitExceeded``. Retries back off
exponentially with jitter; when they run out, or the server asks for a wait over
``SYNC_MAX_WAIT_SECONDS``, :class:`jobs.errors.TransientJobError` hands over to the job's own
retry policy. Any other response is returned for the caller to judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from jobs.http import is_transient_response, send_with_retries
from jobs.ratelimit import SharedRateLimiter
from jobs.settings import Settings

__all__ = [
    "GOOGLE_RATE_LIMIT_REASONS",
    "RetryingSender",
    "google_error_reason",
    "json_object",
]

GOOGLE_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


def google_error_reason(response: httpx.Response) -> str | None:
    """The first ``errors[].reason`` of a Google error body, if it has one."""
    try:
        error = response.json().get("error", {})
        return str(error["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def _transient(response: httpx.Response) -> bool:
    if is_transient_response(response):
        return True
    return response.status_code == 403 and google_error_reason(response) in (
        GOOGLE_RATE_LIMIT_REASONS
    )


@dataclass(frozen=True)
class RetryingSender:
    """Sends requests through one shared limiter, retrying transient failures."""

    client: httpx.AsyncClient
    limiter: SharedRateLimiter
    attempts: int
    backoff_base: float
    max_wait: float

    @classmethod
    def for_settings(
        cls, client: httpx.AsyncClient, limiter: SharedRateLimiter, settings: Settings
    ) -> RetryingSender:
        """A sender with the ``SYNC_*`` retry settings."""
        return cls(
            client=client,
            limiter=limiter,
            attempts=settings.sync_http_attempts,
            backoff_base=settings.sync_backoff_base_seconds,
            max_wait=settings.sync_max_wait_seconds,
        )

    async def send(self, build_request: Callable[[], httpx.Request]) -> httpx.Response:
        """The first response that is not transient; TransientJobError when retries run out."""
        return await send_with_retries(
            self.client,
            build_request,
            attempts=self.attempts,
            backoff_base=self.backoff_base,
            max_wait=self.max_wait,
            is_transient=_transient,
            before_attempt=self.limiter.acquire,
        )


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` when the body is not one (e.g. a bare 502 page)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
