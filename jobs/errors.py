"""The project's exceptions.

::

    JobsError                      base of everything raised on purpose
    ├── ConfigurationError         a setting is missing or invalid (names the variable)
    ├── UnknownJobError            no job is declared under that name
    ├── JobArgumentsError          arguments do not match the job's signature (.job, .errors)
    ├── UnstorableTextError        a text holds a character no database can store (.field)
    ├── InvalidJobIdError          a job id outside the allowed characters or length
    ├── PayloadTooLargeError       a serialized job over JOB_MAX_PAYLOAD_BYTES (.size, .limit)
    ├── jobs.redis_link.RedisUnavailableError
    │                              Redis did not answer within REDIS_RETRY_SECONDS (.reason);
    │                              also a ``redis.exceptions.ConnectionError``
    ├── TransientJobError          the job may succeed if tried again later (.retry_after)
    ├── PermanentJobError          the job failed for good; retrying cannot help
    ├── JobFailedError             a producer asked for the result of a job that failed
    │                              (.job_id, .error_type, .error_message)
    ├── JobAbortedError            a producer asked for the result of an aborted job (.job_id)
    └── jobs.api.ApiError          the service API's: InvalidInputError, NotFoundError

``arq.Retry`` stays control flow of the runtime: job code raises ``TransientJobError``
(or lets a transient library error escape) and the runtime decides whether to retry.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "InvalidJobIdError",
    "JobAbortedError",
    "JobArgumentsError",
    "JobFailedError",
    "JobsError",
    "PayloadTooLargeError",
    "PermanentJobError",
    "TransientJobError",
    "UnknownJobError",
    "UnstorableTextError",
    "describe_errors",
]


class JobsError(Exception):
    """Base class of every exception the project raises on purpose."""


class ConfigurationError(JobsError):
    """A setting is missing or invalid; the message names the environment variable."""


class UnknownJobError(JobsError, LookupError):
    """No job is declared under the given name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"unknown job {name!r}; declared jobs: {', '.join(sorted(known))}")


def describe_errors(errors: list[dict[str, Any]], unnamed: str = "(arguments)") -> str:
    """Validation errors (``{"loc": …, "msg": …}``, as pydantic gives them) in one line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or unnamed}: {e.get('msg')}" for e in errors
    )


class JobArgumentsError(JobsError, ValueError):
    """The arguments given for a job do not match its declared signature."""

    def __init__(self, job: str, errors: list[dict[str, Any]]) -> None:
        self.job = job
        self.errors = errors
        super().__init__(f"invalid arguments for job {job!r}: {describe_errors(errors)}")


class UnstorableTextError(JobsError, ValueError):
    """A text value holds a character that cannot be stored (NUL, a lone surrogate).

    PostgreSQL's ``text`` and ``jsonb`` refuse U+0000, and no database can encode a surrogate
    half in UTF-8; ``field`` names the value.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


class InvalidJobIdError(JobsError, ValueError):
    """A job id outside the allowed characters or length (see :mod:`jobs.limits`)."""


class PayloadTooLargeError(JobsError, ValueError):
    """A job's serialized payload is over ``JOB_MAX_PAYLOAD_BYTES``."""

    def __init__(self, job: str, size: int, limit: int) -> None:
        self.job = job
        self.size = size
        self.limit = limit
        super().__init__(
            f"job {job!r}: payload of {size} bytes is over JOB_MAX_PAYLOAD_BYTES ({limit}); "
            "pass a reference (a row id, a file path) instead of the data"
        )


class TransientJobError(JobsError):
    """A failure that may pass if the job is tried again later.

    ``retry_after`` (seconds), when the remote side said how long to wait, is a lower bound on
    the delay before the next try.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class PermanentJobError(JobsError):
    """A failure that retrying cannot fix."""


class JobFailedError(JobsError):
    """The job whose result was asked for failed for good.

    ``error_type`` is the name of the exception that failed it (``PermanentJobError``,
    ``JobTimeout``, ``MaxTriesExceeded``…) and ``error_message`` its message, secrets masked:
    what the failed-jobs table records.
    """

    def __init__(self, job_id: str, error_type: str, error_message: str) -> None:
        self.job_id = job_id
        self.error_type = error_type
        self.error_message = error_message
        super().__init__(f"job {job_id} failed: {error_type}: {error_message}")


class JobAbortedError(JobsError):
    """The job whose result was asked for was aborted (before it started, or while running)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} was aborted")
