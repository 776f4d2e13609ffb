"""Structured logs of the ``jobs`` loggers: one JSON object per line, or text for development.

Every line carries the ``trace_id`` and ``span_id`` of the span it was written in, so a log line
leads to its trace in Jaeger. Job lines add the fields given as ``extra={"job": {...}}``.
``arq`` configures only its own logger; a worker started by ``arq jobs.<family>.WorkerSettings``
also gets a handler for the ``jobs`` loggers, unless the application configured logging itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from jobs.settings import Settings

__all__ = [
    "JsonFormatter",
    "SecretFilter",
    "TextFormatter",
    "configure_logging",
    "trace_fields",
]

#: ``name=value`` pairs whose name looks secret, as ARQ writes job arguments into its log lines.
_SECRET_PAIR = re.compile(
    r"(\b\w*(?:password|secret|token|api_?key|authorization)\w*)="
    r"('[^']*'|\"[^\"]*\"|[^,\s)]+)",
    re.IGNORECASE,
)


def trace_fields() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the current span, if one is recording."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    job = getattr(record, "job", None)
    if isinstance(job, dict):
        fields.update(job)
    fields.update(trace_fields())
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, job fields, trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        payload: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level logger: message key=value …`` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` with its job fields and trace id appended."""
        text = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        return f"{text} {extras}" if extras else text


class SecretFilter(logging.Filter):
    """Masks configured secret values, and arguments named like secrets, in log records.

    ARQ logs every job's arguments when it starts it; this filter on ARQ's loggers (and on the
    project's) keeps a password argument or a leaked secret out of the log.
    """

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message if it holds a secret; never drops a record."""
        message = record.getMessage()
        masked = _SECRET_PAIR.sub(r"\1='***'", self._redact(message))
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def configure_logging(settings: Settings) -> None:
    """Send the ``jobs`` loggers to stderr in ``LOG_FORMAT`` unless something handles them.

    Secrets are masked in the records of the ``jobs`` and ``arq`` loggers either way.
    """
    from jobs.redaction import Redactor

    secret_filter = SecretFilter(Redactor(settings))
    for name in ("jobs", "arq.worker", "arq.jobs", "arq.connections"):
        target = logging.getLogger(name)
        for existing in [f for f in target.filters if isinstance(f, SecretFilter)]:
            target.removeFilter(existing)
        target.addFilter(secret_filter)
    logger = logging.getLogger("jobs")
    logger.setLevel(settings.log_level)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    logger.addHandler(handler)
