"""Domain failures: a job that ran correctly but whose work failed (an e-mail bounced).

Such a job does not raise — it has recorded what happened and retrying would not help — but
it must not look like a success either. It calls :meth:`jobs.JobContext.report_failure`
with a short, bounded ``error_type`` (a name such as ``EmailBounced``, never an id) and a
message; the runtime then ends the try as a failure: span status ERROR with ``error.type``,
``error.type`` on the metrics, a failed-jobs record (``python -m jobs failed list``, "failed
1h" in ``status``) and a warning log line. The job's result is still returned to whoever
awaits it, and the job is not retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DomainFailure", "ReportedOutcome"]


@dataclass(frozen=True)
class DomainFailure:
    """One failure a job reported: a bounded type and a human-readable message."""

    error_type: str
    message: str


@dataclass
class ReportedOutcome:
    """What a try reported about its own work, read by the runtime when the job returns."""

    failures: list[DomainFailure] = field(default_factory=list)

    def report(self, error_type: str, message: str) -> None:
        """Add one failure; the first one is the try's ``error.type``."""
        if not error_type or len(error_type) > 100:
            raise ValueError("error_type must be a short name such as 'EmailBounced'")
        self.failures.append(DomainFailure(error_type, message))

    @property
    def failure(self) -> DomainFailure | None:
        """The failure the try ends with: the first reported, or None."""
        return self.failures[0] if self.failures else None
