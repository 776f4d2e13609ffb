"""Structured logs of the ``jobs`` loggers: one JSON object per line, or text for development.

Every line carries the ``trace_id`` and ``span_id`` of the span it was written in, so a log line
leads to its trace in Jaeger. Job lines add the fields given as ``extra={"job": {...}}``.
Under ``arq jobs.<family>.WorkerSettings`` and ``python -m jobs``, :func:`command_logging`
gives ARQ's, Alembic's and the project's loggers one handler in ``LOG_FORMAT``; a worker run
inside an application gets a handler for the ``jobs`` loggers unless the application configured
logging itself.

Secrets are masked at the handlers (:func:`install_secret_masking`), not at a logger: Python
applies a logger's filters only to records logged on that very logger, never to its children's
or to other libraries', while a handler's filters see every record it writes.

ARQ's own lines for a job that starts (``→``) and one that succeeds (``←``) are not written
(:class:`ArqJobLinesFilter`): the runtime's ``job … started`` and ``job … succeeded`` lines say
the same with the job's fields, the duration and the outcome, and each line costs CPU on every
job. ``LOG_ARQ_JOB_LINES=true`` keeps them, the start line without the job's arguments (names
and ids only).
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from opentelemetry import trace

from jobs.redaction import Redactor
from jobs.settings import Settings

__all__ = [
    "ArqJobLinesFilter",
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


#: One encoder for every line (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
#: The last second formatted, and its text: lines written in the same second share it.
_second: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """``record.created`` as ISO 8601 in UTC, to the millisecond (``…T12:00:00.123+00:00``)."""
    global _second
    whole = int(record.created)
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{cached[1]}.{int(record.msecs):03d}+00:00"


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
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_text:
            payload["exception"] = record.exc_text
        elif record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(payload)


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
        text = self._redactor(text)
        if "=" in text:  # no pair without one: most lines skip the expression
            text = _SECRET_PAIR.sub(r"\1='***'", text)
        return text

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
#: ARQ's line when a job succeeded: duration, ``<job id>:<name>``, the result (not logged).
_ARQ_JOB_SUCCEEDED = "%6.2fs ← %s ● %s"


class ArqJobLinesFilter(logging.Filter):
    """ARQ's per-job start and success lines: dropped, or kept without the job's arguments.

    ``keep=False`` (``LOG_ARQ_JOB_LINES=false``, the default) drops both, as the runtime writes
    its own lines for every try; ``keep=True`` rewrites the start line to
    ``<elapsed> → <job id>:<name>`` so that it never shows the job's data. ARQ's other lines
    (retries, aborts, failures, start-up) pass unchanged.
    """

    def __init__(self, *, keep: bool) -> None:
        super().__init__()
        self.keep = keep

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a start or success line unless kept; a kept start line loses its arguments."""
        message = record.msg
        if message == _ARQ_JOB_START:
            if not self.keep:
                return False
            arguments = record.args
            if isinstance(arguments, tuple) and len(arguments) == 4:
                elapsed, ref, _, extra = arguments
                record.msg, record.args = "%6.2fs → %s%s", (elapsed, ref, extra)
            return True
        return self.keep or message != _ARQ_JOB_SUCCEEDED


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
    FastAPI lifespan when the app starts); it replaces the filters it installed before. ARQ's
    per-job lines are left out or kept, as ``LOG_ARQ_JOB_LINES`` says (:class:`ArqJobLinesFilter`).
    """
    secret_filter = SecretFilter(Redactor(settings))
    for handler in _every_handler():
        for existing in [f for f in handler.filters if isinstance(f, SecretFilter)]:
            handler.removeFilter(existing)
        handler.addFilter(secret_filter)
    arq_worker = logging.getLogger("arq.worker")
    for old in [f for f in arq_worker.filters if isinstance(f, ArqJobLinesFilter)]:
        arq_worker.removeFilter(old)
    arq_worker.addFilter(ArqJobLinesFilter(keep=settings.log_arq_job_lines))


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
