"""Logging of the ``jobs`` loggers in worker processes.

``arq`` configures only its own logger; a worker started by ``arq jobs.<family>.WorkerSettings``
also gets a handler for the ``jobs`` loggers, unless the application configured logging itself.
"""

from __future__ import annotations

import logging

from jobs.settings import Settings

__all__ = ["configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Send the ``jobs`` loggers to stderr at ``LOG_LEVEL`` if nothing else handles them."""
    logger = logging.getLogger("jobs")
    logger.setLevel(settings.log_level)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    logger.addHandler(handler)
