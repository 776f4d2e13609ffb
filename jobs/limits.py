"""What a job may look like in Redis: its id and its payload size, for producers and workers alike.

A job id is 1-200 printable ASCII characters without spaces (letters, digits and punctuation
such as ``:-_.@/``), so an id can never break a log line, a database column or a Redis key
pattern. A payload (the serialized job) is at most ``JOB_MAX_PAYLOAD_BYTES``. Producers are
refused at enqueue; a worker refuses whatever arrives in its queue beyond these limits.
"""

from __future__ import annotations

import re
from typing import Final

from jobs.errors import InvalidJobIdError

__all__ = ["MAX_JOB_ID_LENGTH", "check_job_id", "job_id_problem"]

MAX_JOB_ID_LENGTH: Final = 200

_JOB_ID = re.compile(r"[\x21-\x7e]+")


def job_id_problem(job_id: str | bytes) -> str | None:
    """Why ``job_id`` cannot be a job id, or None when it can."""
    if isinstance(job_id, bytes):
        try:
            job_id = job_id.decode("ascii")
        except UnicodeDecodeError:
            return "job id is not printable ASCII"
    if not job_id:
        return "job id is empty"
    if len(job_id) > MAX_JOB_ID_LENGTH:
        return f"job id is longer than {MAX_JOB_ID_LENGTH} characters ({len(job_id)})"
    if _JOB_ID.fullmatch(job_id) is None:
        return "job id is not printable ASCII (letters, digits, punctuation; no spaces)"
    return None


def check_job_id(job_id: str) -> None:
    """Raise :class:`InvalidJobIdError` unless ``job_id`` is a valid job id."""
    problem = job_id_problem(job_id)
    if problem is not None:
        raise InvalidJobIdError(f"{problem}: {job_id[:40]!r}")
