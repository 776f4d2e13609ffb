"""What the ai family tells operators: runs by outcome and tasks paused.

``jobs.ai.runs`` (counter) counts finished task runs by ``ai.run.status`` (``succeeded`` or
``failed``); ``jobs.ai.tasks.paused`` (counter) counts tasks paused, by ``ai.pause.reason``
(``failures``: ``AI_TASK_MAX_FAILURES`` failed runs in a row; ``schedule``: an invalid
schedule).
"""

from __future__ import annotations

from opentelemetry import metrics

__all__ = ["count_pause", "count_run"]

_meter = metrics.get_meter("jobs.ai")
_RUNS = _meter.create_counter("jobs.ai.runs", unit="{run}", description="AI task runs, by status")
_PAUSED = _meter.create_counter(
    "jobs.ai.tasks.paused", unit="{task}", description="AI tasks paused, by reason"
)


def count_run(status: str) -> None:
    """Count one finished run (``succeeded`` or ``failed``)."""
    _RUNS.add(1, {"ai.run.status": status})


def count_pause(reason: str, count: int = 1) -> None:
    """Count tasks paused for ``reason`` (``failures`` or ``schedule``)."""
    if count:
        _PAUSED.add(count, {"ai.pause.reason": reason})
