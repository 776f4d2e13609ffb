"""Sampling follows the standard OTEL_TRACES_SAMPLER settings and drops orphan client spans."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from jobs.settings import load_settings
from jobs.telemetry import build_sampler

TRACE_ID = 0x0123456789ABCDEF0123456789ABCDEF


def parent(sampled: bool) -> Context:
    """A context whose current span is a remote parent, sampled or not."""
    span = NonRecordingSpan(
        SpanContext(TRACE_ID, 0xAB, is_remote=True, trace_flags=TraceFlags(int(sampled)))
    )
    return trace.set_span_in_context(span)


@pytest.mark.parametrize(
    ("sampler", "arg", "context", "expected"),
    [
        ("always_off", 1.0, None, Decision.DROP),
        ("always_on", 1.0, None, Decision.RECORD_AND_SAMPLE),
        ("traceidratio", 0.0, None, Decision.DROP),
        ("traceidratio", 1.0, None, Decision.RECORD_AND_SAMPLE),
        ("parentbased_always_on", 1.0, parent(sampled=False), Decision.DROP),
        ("parentbased_always_off", 1.0, parent(sampled=True), Decision.RECORD_AND_SAMPLE),
        ("parentbased_traceidratio", 0.0, None, Decision.DROP),
    ],
)
def test_standard_sampler_names(
    sampler: str, arg: float, context: Context | None, expected: Decision
) -> None:
    """Each OTEL_TRACES_SAMPLER value (with its ratio) decides a consumer span as specified."""
    settings = load_settings(otel_traces_sampler=sampler, otel_traces_sampler_arg=arg)
    result = build_sampler(settings).should_sample(
        context, TRACE_ID, "process jobs:queue:email", SpanKind.CONSUMER
    )
    assert result.decision is expected


def test_client_span_without_parent_is_dropped_but_kept_inside_a_job() -> None:
    """A Redis poll outside any job is not traced; the same call inside a job's span is."""
    sampler = build_sampler(load_settings())
    orphan = sampler.should_sample(None, TRACE_ID, "ZRANGEBYSCORE", SpanKind.CLIENT)
    inside = sampler.should_sample(parent(True), TRACE_ID, "ZRANGEBYSCORE", SpanKind.CLIENT)
    assert orphan.decision is Decision.DROP
    assert inside.decision is Decision.RECORD_AND_SAMPLE
