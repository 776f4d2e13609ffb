"""Job metrics: OpenTelemetry instruments, exported by OTLP and on a Prometheus endpoint.

The messaging instruments follow the OpenTelemetry messaging metric conventions: each data
point carries ``messaging.system`` (``arq``), ``messaging.operation.name`` and
``messaging.operation.type``, the queue (``messaging.destination.name``) and the job's name
(``messaging.arq.job.name``, bounded by the declared jobs), and ``error.type`` only when the
operation failed.

- ``messaging.process.duration`` (histogram, s) — one try of a job (``process``);
- ``messaging.client.consumed.messages`` (counter) — tries handed to a job function;
- ``messaging.client.operation.duration`` (histogram, s) — one enqueue (``send``);
- ``messaging.client.sent.messages`` (counter) — jobs enqueued;
- ``jobs.processed`` (counter) — finished tries by ``jobs.outcome``: ``success``, ``retry``
  (a failed try that will be tried again) or ``failure`` (the job failed for good);
- ``jobs.lag`` (histogram, s) — from the time a job was due to the start of its try;
- ``jobs.wait.duration`` (histogram, s) — time a job spent waiting inside a try, by
  ``jobs.wait.reason`` (``rate_limit``, ``http_retry``) and ``error.type`` (what was retried);
- ``jobs.queue.depth``, ``jobs.queue.scheduled``, ``jobs.queue.oldest_age`` (gauges, per queue,
  sampled from Redis every ``METRICS_SAMPLE_INTERVAL`` seconds);
- ``jobs.worker.running`` and ``jobs.worker.last_heartbeat`` (gauges, per worker process).

Families add their own domain counters (``jobs.email.deliveries``, ``jobs.ai.runs``, …).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.util.types import AttributeValue

from jobs.constants import MESSAGING_SYSTEM

__all__ = ["CURRENT_JOB", "DURATION_BUCKETS", "METRICS", "JobMetrics", "QueueSample", "Totals"]

Attributes = Mapping[str, AttributeValue]

#: Bucket boundaries (seconds) the conventions advise for duration histograms.
DURATION_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    30.0,
    60.0,
    300.0,
)

#: The name of the job whose try is running in the current task (None outside jobs).
CURRENT_JOB: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jobs_current_job", default=None
)


@dataclass
class QueueSample:
    """The last sample of one queue."""

    ready: int = 0
    scheduled: int = 0
    oldest_age: float = 0.0


class Totals:
    """Running counts by attribute set, reported by an observable counter when collected.

    Counting a job is one dictionary update instead of a measurement through the SDK (which
    copies, validates and hashes the attributes each time); the exported data points are the
    same monotonic sums a synchronous counter gives.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Hashable, tuple[Attributes, int]] = {}

    def add(self, key: Hashable, attributes: Attributes) -> None:
        """Count one more for ``attributes``, which ``key`` stands for."""
        with self._lock:
            _, count = self._counts.get(key, (attributes, 0))
            self._counts[key] = (attributes, count + 1)

    def observe(self, _: CallbackOptions) -> Iterable[Observation]:
        """The running count of every attribute set seen (the callback of the counter)."""
        with self._lock:
            counts = list(self._counts.values())
        return [Observation(count, attributes) for attributes, count in counts]


@dataclass
class JobMetrics:
    """The process's instruments and the state its gauges report."""

    running: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    queues: dict[str, QueueSample] = field(default_factory=dict)
    last_heartbeat: float = 0.0
    _attributes: dict[tuple[str, str, str, str | None], Attributes] = field(
        default_factory=dict, repr=False
    )
    _processed_attributes: dict[tuple[str, str, str], Attributes] = field(
        default_factory=dict, repr=False
    )
    consumed: Totals = field(default_factory=Totals, repr=False)
    processed: Totals = field(default_factory=Totals, repr=False)
    sent: Totals = field(default_factory=Totals, repr=False)

    def __post_init__(self) -> None:
        meter = metrics.get_meter("jobs")
        self.duration = meter.create_histogram(
            "messaging.process.duration",
            unit="s",
            description="Duration of one try of a job",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        # counters counted per job: kept in Totals, read by the SDK only when it collects
        meter.create_observable_counter(
            "messaging.client.consumed.messages",
            [self.consumed.observe],
            unit="{message}",
            description="Tries of jobs handed to their job function",
        )
        meter.create_observable_counter(
            "jobs.processed",
            [self.processed.observe],
            unit="{job}",
            description="Finished tries of jobs, by outcome",
        )
        meter.create_observable_counter(
            "messaging.client.sent.messages",
            [self.sent.observe],
            unit="{message}",
            description="Jobs enqueued",
        )
        self.send_duration = meter.create_histogram(
            "messaging.client.operation.duration",
            unit="s",
            description="Duration of enqueueing one job",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.lag = meter.create_histogram(
            "jobs.lag",
            unit="s",
            description="Time from when a job was due to its start",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.wait = meter.create_histogram(
            "jobs.wait.duration",
            unit="s",
            description="Time a job spent waiting inside a try (rate limits, retried requests)",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
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

    def messaging_attributes(
        self, operation: str, queue: str, job: str, error_type: str | None = None
    ) -> Attributes:
        """The attributes of a ``send`` or ``process`` data point (built once, then reused)."""
        key = (operation, queue, job, error_type)
        attributes = self._attributes.get(key)
        if attributes is None:
            built: dict[str, AttributeValue] = {
                "messaging.system": MESSAGING_SYSTEM,
                "messaging.operation.name": operation,
                "messaging.operation.type": operation,
                "messaging.destination.name": queue,
                "messaging.arq.job.name": job,
            }
            if error_type is not None:
                built["error.type"] = error_type
            attributes = self._attributes[key] = built
        return attributes

    def try_finished(
        self, queue: str, job: str, outcome: str, seconds: float, error_type: str | None = None
    ) -> None:
        """Count one finished try (``error_type`` when it failed) and record its duration."""
        attributes = self.messaging_attributes("process", queue, job, error_type)
        self.duration.record(seconds, attributes)
        self.consumed.add(("process", queue, job), self.messaging_attributes("process", queue, job))
        key = (queue, job, outcome)
        processed = self._processed_attributes.get(key)
        if processed is None:
            processed = self._processed_attributes[key] = {
                "messaging.destination.name": queue,
                "messaging.arq.job.name": job,
                "jobs.outcome": outcome,
            }
        self.processed.add(key, processed)
        self.outcomes[(job, outcome)] += 1

    def message_sent(
        self,
        queue: str,
        job: str,
        seconds: float,
        error_type: str | None = None,
        *,
        sent: bool = True,
    ) -> None:
        """Record how long one enqueue took; count it if a job was sent.

        ``error_type`` when it failed; ``sent=False`` when a job with that id existed already.
        """
        attributes = self.messaging_attributes("send", queue, job, error_type)
        self.send_duration.record(seconds, attributes)
        if sent and error_type is None:
            self.sent.add((queue, job), attributes)

    def waited(self, seconds: float, reason: str, error_type: str | None = None) -> None:
        """Record a wait inside a try: ``reason`` is bounded, ``error_type`` what was retried."""
        attributes: dict[str, AttributeValue] = {"jobs.wait.reason": reason}
        job = CURRENT_JOB.get()
        if job is not None:
            attributes["messaging.arq.job.name"] = job
        if error_type is not None:
            attributes["error.type"] = error_type
        self.wait.record(seconds, attributes)

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
