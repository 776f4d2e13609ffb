"""What the service API raises: bad input (a 422 in HTTP terms) and what is not the user's (404).

::

    JobsError
    └── ApiError                   raised by jobs.api on purpose
        ├── InvalidInputError      input refused before anything was written (.errors)
        └── NotFoundError          no such account or task of that user (.what)
"""

from __future__ import annotations

from typing import Any

from jobs.errors import JobsError, describe_errors

__all__ = ["ApiError", "InvalidInputError", "NotFoundError"]


class ApiError(JobsError):
    """Base of the service API's errors."""


class InvalidInputError(ApiError, ValueError):
    """The input was refused and nothing was written.

    ``errors`` lists each problem as ``{"loc": (field, …), "msg": text}``, as pydantic and
    FastAPI do, so a handler can answer 422 with it.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"invalid input: {describe_errors(errors, '(input)')}")


class NotFoundError(ApiError, LookupError):
    """The user has no such account or task (whether or not someone else has)."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"no {what}")
