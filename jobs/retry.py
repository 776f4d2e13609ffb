"""Retry policies: which failures are worth another try, and how long to wait before it."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import aiosmtplib
import httpx
import redis.exceptions
import sqlalchemy.exc

from jobs.errors import TransientJobError

__all__ = [
    "NO_RETRY",
    "RetryPolicy",
    "is_transient",
    "retry_after_of",
    "retry_after_seconds",
]

#: HTTP statuses that say "later", not "never".
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 529})


def is_transient(exc: BaseException) -> bool:
    """The default classification: connection trouble, timeouts, 429/5xx and SMTP 4xx."""
    if isinstance(exc, TransientJobError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in TRANSIENT_HTTP_STATUSES
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, sqlalchemy.exc.OperationalError)
    return isinstance(
        exc,
        (
            ConnectionError,
            TimeoutError,
            httpx.TransportError,
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPTimeoutError,
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
        ),
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


def retry_after_of(exc: BaseException) -> float | None:
    """The delay the remote side asked for (``Retry-After``), in seconds, if it said one."""
    if isinstance(exc, TransientJobError):
        return exc.retry_after
    if isinstance(exc, httpx.HTTPStatusError):
        return retry_after_seconds(exc.response)
    return None


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often a job is tried and how long it waits between tries.

    The delay before try ``n + 1`` is ``min(backoff_max, backoff_base * backoff_factor**(n-1))``
    with "equal jitter" (a random point in its upper half), and never less than what the remote
    side asked for with ``Retry-After``.
    """

    max_tries: int = 5
    backoff_base: float = 5.0
    backoff_factor: float = 2.0
    backoff_max: float = 600.0
    jitter: bool = True
    transient: Callable[[BaseException], bool] = field(default=is_transient)

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.backoff_factor < 1:
            raise ValueError("backoff_base and backoff_max must be >= 0, backoff_factor >= 1")

    def should_retry(self, exc: BaseException, try_number: int) -> bool:
        """Whether a try that raised ``exc`` gets another try."""
        return try_number < self.max_tries and self.transient(exc)

    def delay(self, try_number: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed try ``try_number`` (1-based) before the next one."""
        delay = min(self.backoff_max, self.backoff_base * self.backoff_factor ** (try_number - 1))
        if self.jitter:
            delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not crypto
        asked = retry_after_of(exc) if exc is not None else None
        return max(delay, asked or 0.0)


#: A policy for jobs that must run at most once per enqueue.
NO_RETRY = RetryPolicy(max_tries=1)
