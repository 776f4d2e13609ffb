"""Job metrics: OpenTelemetry instruments, exported by OTLP and on a Prometheus endpoint.

Instruments (names follow the messaging semantic conventions where they exist):

- ``messaging.process.duration`` (histogram, s) — one try, by queue, job and outcome;
- ``jobs.processed`` (counter) — finished tries by queue, job and outcome
  (``success``, ``retry``, ``failure``);
- ``messaging.client.sent.messages`` (counter) — jobs enqueued, by queue and job;
- ``jobs.lag`` (histogram, s) — from the time a job was due to the start of its try;
- ``jobs.queue.depth``, ``jobs.queue.scheduled``, ``jobs.queue.oldest_age`` (gauges, per queue,
  sampled from Redis every ``METRICS_SAMPLE_INTERVAL`` seconds);
- ``jobs.worker.running`` and ``jobs.worker.last_heartbeat`` (gauges, per worker process).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

__all__ = ["METRICS", "JobMetrics", "QueueSample"]


@dataclass
class QueueSample:
    """The last sample of one queue."""

    ready: int = 0
    scheduled: int = 0
    oldest_age: float = 0.0


@dataclass
class JobMetrics:
    """The process's instruments and the state its gauges report."""

    running: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    queues: dict[str, QueueSample] = field(default_factory=dict)
    last_heartbeat: float = 0.0

    def __post_init__(self) -> None:
        meter = metrics.get_meter("jobs")
        self.duration = meter.create_histogram(
            "messaging.process.duration", unit="s", description="Duration of one try of a job"
        )
        self.processed = meter.create_counter(
            "jobs.processed", unit="{job}", description="Finished tries of jobs, by outcome"
        )
        self.sent = meter.create_counter(
            "messaging.client.sent.messages", unit="{message}", description="Jobs enqueued"
        )
        self.lag = meter.create_histogram(
            "jobs.lag", unit="s", description="Time from when a job was due to its start"
        )
        for name, field_name, unit, description in (
            ("jobs.queue.depth", "ready", "{job}", "Jobs due, waiting"),
            ("jobs.queue.scheduled", "scheduled", "{job}", "Jobs deferred to a later time"),
            ("jobs.queue.oldest_age", "oldest_age", "s", "Age of the oldest due, waiting job"),
        ):
            meter.create_observable_gauge(
                name, [self._queue_gauge(field_name)], unit=unit, description=description
            )
        meter.create_observable_gauge(
            "jobs.worker.running",
            [self._running],
            unit="{job}",
            description="Jobs running in this worker process",
        )
        meter.create_observable_gauge(
            "jobs.worker.last_heartbeat",
            [self._heartbeat],
            unit="s",
            description="Unix time of this worker's last heartbeat",
        )

    def try_finished(self, queue: str, job: str, outcome: str, seconds: float) -> None:
        """Count one finished try and record its duration."""
        attributes = {
            "messaging.destination.name": queue,
            "messaging.arq.job.name": job,
            "outcome": outcome,
        }
        self.duration.record(seconds, attributes)
        self.processed.add(1, attributes)
        self.outcomes[(job, outcome)] += 1

    def beat(self) -> None:
        """Note that this worker is alive now."""
        self.last_heartbeat = time.time()

    def _queue_gauge(self, field_name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            for queue, sample in self.queues.items():
                yield Observation(
                    getattr(sample, field_name), {"messaging.destination.name": queue}
                )

        return observe

    def _running(self, _: CallbackOptions) -> Iterable[Observation]:
        for queue, count in self.running.items():
            yield Observation(count, {"messaging.destination.name": queue})

    def _heartbeat(self, _: CallbackOptions) -> Iterable[Observation]:
        if self.last_heartbeat:
            yield Observation(self.last_heartbeat)


#: The process-wide instruments.
METRICS = JobMetrics()
