"""Reading a worker process's JSON log lines: which jobs started, when, and at which try."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["JobStart", "job_starts", "log_records"]


@dataclass(frozen=True)
class JobStart:
    """One ``job <name> started`` line: the job's id, its try and the Unix time of the line."""

    job_id: str
    try_number: int
    at: float


def log_records(output: str) -> Iterator[dict[str, Any]]:
    """The JSON objects among a worker's output lines (other lines are skipped)."""
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def job_starts(output: str, job: str) -> list[JobStart]:
    """Every start of job ``job`` a worker logged, in order."""
    return [
        JobStart(
            record["job_id"],
            int(record["try"]),
            dt.datetime.fromisoformat(record["time"]).timestamp(),
        )
        for record in log_records(output)
        if record.get("message") == f"job {job} started"
    ]
