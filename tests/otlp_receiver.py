"""Local OTLP receivers, as Jaeger or a collector would run them: HTTP/protobuf and gRPC.

Both decode what arrives — spans and metric data points — into plain records the tests read.
"""

from __future__ import annotations

import gzip
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.smtp_server import free_port


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived, with the resource it came from."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    links: list[tuple[str, str]]
    events: list[str]
    event_attributes: list[dict[str, Any]]
    status_code: int
    status_message: str


@dataclass(frozen=True)
class ReceivedPoint:
    """One metric data point as it arrived: a sum's or gauge's value, a histogram's count/sum."""

    metric: str
    unit: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    value: float
    total: float = 0.0
    bounds: tuple[float, ...] = ()


@dataclass
class Received:
    """What a receiver has been sent, whatever the transport."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    points: list[ReceivedPoint] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def store_spans(self, request: ExportTraceServiceRequest) -> None:
        """Keep every span of an export request."""
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received = ReceivedSpan(
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        events=[event.name for event in span.events],
                        event_attributes=[_attributes(event.attributes) for event in span.events],
                        status_code=span.status.code,
                        status_message=span.status.message,
                    )
                    with self.lock:
                        self.spans.append(received)

    def store_metrics(self, request: ExportMetricsServiceRequest) -> None:
        """Keep every data point of an export request."""
        points = []
        for resource_metrics in request.resource_metrics:
            resource = _attributes(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    for point in data.data_points:
                        common = {
                            "metric": metric.name,
                            "unit": metric.unit,
                            "attributes": _attributes(point.attributes),
                            "resource": resource,
                        }
                        if kind == "histogram":
                            points.append(
                                ReceivedPoint(
                                    value=point.count,
                                    total=point.sum,
                                    bounds=tuple(point.explicit_bounds),
                                    **common,
                                )
                            )
                        else:
                            number = point.as_int if point.HasField("as_int") else point.as_double
                            points.append(ReceivedPoint(value=number, **common))
        with self.lock:
            self.points.extend(points)

    def received(self) -> list[ReceivedSpan]:
        """The spans received so far."""
        with self.lock:
            return list(self.spans)

    def latest(self, metric: str, **attributes: Any) -> ReceivedPoint | None:
        """The last data point of ``metric`` whose attributes include ``attributes``.

        Attribute names use ``_`` for ``.`` (``error_type="EmailBounced"``).
        """
        wanted = {name.replace("_", "."): value for name, value in attributes.items()}
        with self.lock:
            points = list(self.points)
        for point in reversed(points):
            if point.metric == metric and all(
                point.attributes.get(name) == value for name, value in wanted.items()
            ):
                return point
        return None

    def wait_for(self, condition: Any, seconds: float = 20.0) -> None:
        """Block until ``condition()`` is true (polling), or fail after ``seconds``."""
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "timed out waiting for the export"
            time.sleep(0.05)


@dataclass
class OtlpReceiver(Received):
    """OTLP/HTTP: listens on a free loopback port for ``/v1/traces`` and ``/v1/metrics``."""

    port: int = field(default_factory=free_port)

    @property
    def endpoint(self) -> str:
        """The base URL to give ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    receiver.store_spans(ExportTraceServiceRequest.FromString(body))
                    reply = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver.store_metrics(ExportMetricsServiceRequest.FromString(body))
                    reply = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class GrpcOtlpReceiver(Received):
    """OTLP/gRPC: the trace and metrics services on a free loopback port (no TLS)."""

    port: int = field(default_factory=free_port)

    @property
    def endpoint(self) -> str:
        """The URL to give ``OTEL_EXPORTER_OTLP_ENDPOINT`` with the ``grpc`` protocol."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcOtlpReceiver:
        receiver = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(
                self, request: ExportTraceServiceRequest, context: Any
            ) -> ExportTraceServiceResponse:
                receiver.store_spans(request)
                return ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(
                self, request: ExportMetricsServiceRequest, context: Any
            ) -> ExportMetricsServiceResponse:
                receiver.store_metrics(request)
                return ExportMetricsServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)
