"""Structured logs of the ``jobs`` loggers: one JSON object per line, or text for development.

Every line carries the ``trace_id`` and ``span_id`` of the span it was written in, so a log line
leads to its trace in Jaeger. Job lines add the fields given as ``extra={"job": {...}}``.
Under ``arq jobs.<family>.WorkerSettings`` and ``python -m jobs``, :func:`command_logging`
gives ARQ's, Alembic's and the project's loggers one handler in ``LOG_FORMAT``; a worker run
inside an application gets a handler for the ``jobs`` loggers unless the application configured
logging itself.

Secrets are masked at the handlers (:func:`install_secret_masking`), not at a logger: Python
applies a logger's filters only to records logged on that very logger, never to its children's
or to other libraries', while a handler's filters see every record it writes. ARQ's "job
started" line loses the job's arguments (:class:`ArqArgumentsFilter`): names and ids only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

from opentelemetry import trace

from jobs.redaction import Redactor
from jobs.settings import Settings

__all__ = [
    "ArqArgumentsFilter",
    "JsonFormatter",
    "SecretFilter",
    "TextFormatter",
    "command_logging",
    "configure_logging",
    "install_secret_masking",
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
        if record.exc_text:
            payload["exception"] = record.exc_text
        elif record.exc_info:
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
    """Masks configured secret values, and ``name=value`` pairs named like secrets, in records.

    It rewrites the message, the exception and stack text, and the job fields of each record
    before any formatter sees it. Installed on handlers by :func:`install_secret_masking`.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def _mask(self, text: str) -> str:
        return _SECRET_PAIR.sub(r"\1='***'", self._redactor(text))

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record where it holds a secret; never drops a record."""
        try:
            message = record.getMessage()
            masked = self._mask(message)
            if masked != message:
                record.msg, record.args = masked, ()
            if record.exc_info and not record.exc_text:
                record.exc_text = _PLAIN.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self._mask(record.exc_text)
            if record.stack_info:
                record.stack_info = self._mask(record.stack_info)
            job = getattr(record, "job", None)
            if isinstance(job, dict):
                record.job = self._redactor.values(job)
        except Exception:  # a record that cannot be checked is not written as it is
            record.msg, record.args = "(log record withheld: it could not be checked)", ()
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_PLAIN = logging.Formatter()

#: ARQ's line when it starts a job: elapsed, ``<job id>:<name>``, the arguments, try/delay.
_ARQ_JOB_START = "%6.2fs → %s(%s)%s"


class ArqArgumentsFilter(logging.Filter):
    """Drops the arguments from ARQ's "job started" line, which would log every job's data."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ARQ's start line to ``<elapsed> → <job id>:<name>``; never drops a record."""
        arguments = record.args
        if record.msg == _ARQ_JOB_START and isinstance(arguments, tuple) and len(arguments) == 4:
            elapsed, ref, _, extra = arguments
            record.msg, record.args = "%6.2fs → %s%s", (elapsed, ref, extra)
        return True


def _every_handler() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    handlers: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            handlers[id(handler)] = handler
    return list(handlers.values())


def install_secret_masking(settings: Settings) -> None:
    """Mask secrets on every handler configured now, whichever logger it serves.

    Call it after the application configured its logging (workers do so at start-up, the
    FastAPI lifespan when the app starts); it replaces the filter it installed before.
    """
    secret_filter = SecretFilter(Redactor(settings))
    for handler in _every_handler():
        for existing in [f for f in handler.filters if isinstance(f, SecretFilter)]:
            handler.removeFilter(existing)
        handler.addFilter(secret_filter)
    arq_worker = logging.getLogger("arq.worker")
    if not any(isinstance(f, ArqArgumentsFilter) for f in arq_worker.filters):
        arq_worker.addFilter(ArqArgumentsFilter())


def configure_logging(settings: Settings) -> None:
    """Send the ``jobs`` loggers to stderr in ``LOG_FORMAT`` unless something handles them.

    Secrets are masked on every handler either way (:func:`install_secret_masking`).
    """
    logger = logging.getLogger("jobs")
    logger.setLevel(settings.log_level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
        logger.addHandler(handler)
    install_secret_masking(settings)


def command_logging(settings: Settings, *, verbose: bool = False) -> dict[str, Any]:
    """``logging.config.dictConfig`` input for the processes this project starts.

    Under ``arq jobs.<family>.WorkerSettings`` and ``python -m jobs``: one stderr handler in
    ``LOG_FORMAT`` on the root logger, which ARQ's, Alembic's and the project's loggers reach,
    so every line is JSON (or text) alike. ``verbose`` is ARQ's ``-v`` (DEBUG for ARQ).
    """
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"jobs": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "jobs",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "arq": {"level": "DEBUG" if verbose else "INFO", "handlers": [], "propagate": True},
            "alembic": {"level": "INFO"},
            "alembic.runtime.plugins": {"level": "WARNING"},  # one line per built-in plugin
            "jobs": {"level": settings.log_level},
        },
    }
