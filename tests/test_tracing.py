"""Trace context travels from the producer's span to every try of the job."""

from __future__ import annotations

import re

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from jobs import JobsPool
from jobs.settings import Settings
from tests import sample_jobs
from tests.conftest import make_worker, run_burst

pytestmark = pytest.mark.usefixtures("engine")


async def test_consumer_spans_are_children_of_the_producer_span(
    pool: JobsPool, settings: Settings, spans: InMemorySpanExporter
) -> None:
    """Enqueued inside a request span, each try's CONSUMER span is a child of the PRODUCER span."""
    with trace.get_tracer("test").start_as_current_span("POST /things") as request_span:
        job = await pool.enqueue_job("test_flaky", failures=1)
    assert job is not None
    await run_burst(await make_worker(settings, [sample_jobs.flaky]))
    finished = spans.get_finished_spans()
    [producer] = [s for s in finished if s.kind is SpanKind.PRODUCER]
    consumers = [s for s in finished if s.kind is SpanKind.CONSUMER]
    assert producer.name == "send jobs:queue:email"
    assert producer.parent is not None
    assert producer.parent.span_id == request_span.get_span_context().span_id
    assert producer.attributes["messaging.message.id"] == job.job_id
    assert producer.attributes["messaging.operation.type"] == "send"
    assert len(consumers) == 2
    for consumer in consumers:
        assert consumer.name == "process jobs:queue:email"
        assert consumer.context.trace_id == producer.context.trace_id
        assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
        assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
        assert consumer.attributes["messaging.system"] == "arq"
        assert consumer.attributes["messaging.destination.name"] == "jobs:queue:email"
        assert consumer.attributes["messaging.message.id"] == job.job_id
        assert consumer.attributes["messaging.arq.job.name"] == "test_flaky"
    tries = sorted(c.attributes["messaging.arq.job.try"] for c in consumers)
    assert tries == [1, 2]
    redis_calls = [
        s
        for s in finished
        if s.kind is SpanKind.CLIENT
        and s.parent is not None
        and s.parent.span_id in {c.context.span_id for c in consumers}
    ]
    assert [s.name for s in redis_calls] == ["RPUSH", "RPUSH"]  # the job's own Redis calls
    first = next(c for c in consumers if c.attributes["messaging.arq.job.try"] == 1)
    assert [e.name for e in first.events] == ["retry scheduled"]
    assert first.status.is_ok  # a scheduled retry is not an error of the trace


async def test_link_mode_starts_a_new_trace_linked_to_the_producer(
    pool: JobsPool, settings: Settings, spans: InMemorySpanExporter
) -> None:
    """With JOBS_TRACE_PARENTING=link the job gets its own trace with a link to the producer."""
    linked = settings.model_copy(update={"jobs_trace_parenting": "link"})
    await pool.enqueue_job("test_echo", number=1)
    await run_burst(await make_worker(linked, [sample_jobs.echo]))
    [producer] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    [consumer] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert consumer.parent is None
    assert consumer.context.trace_id != producer.context.trace_id
    assert consumer.links[0].context.span_id == producer.context.span_id


async def test_sql_spans_nest_under_the_job_span(
    pool: JobsPool, settings: Settings, spans: InMemorySpanExporter
) -> None:
    """The SQL a job runs (deliver_email reads the outbox) shows up as children of its span."""
    from jobs.email import deliver_email

    await pool.enqueue_job("deliver_email", email_id=12345)
    await run_burst(await make_worker(settings, [deliver_email]))
    [consumer] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    children = [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == consumer.context.span_id
    ]
    assert children and all(s.kind is SpanKind.CLIENT for s in children)
    assert any(
        re.match(r"UPDATE (\w+\.)?outbound_emails", s.attributes.get("db.statement", ""))
        for s in children
    )
