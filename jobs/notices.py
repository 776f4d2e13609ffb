"""Waits and restarts inside a job's try, made visible: a WARNING line and a span event.

An HTTP request retried within the try, a long wait for a shared rate limit, a listing started
over: the try may still succeed, so none of them shows in the job's outcome. Each therefore
leaves one WARNING log line (what happened, the attempt, the wait) and one event with the same
facts on the current span — the job's CONSUMER span — so a slow sync can be explained from its
trace or its log. Event names are few and fixed: ``http.retry``, ``ratelimit.wait``,
``listing.restart``; their attributes follow the semantic conventions where one exists
(``http.response.status_code``, ``error.type``, ``server.address``) and ``jobs.*`` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

__all__ = ["notice"]


def notice(
    logger: logging.Logger, event: str, message: str, attributes: Mapping[str, AttributeValue]
) -> None:
    """Log ``message`` at WARNING and add ``event`` with ``attributes`` to the current span."""
    logger.warning(message)
    trace.get_current_span().add_event(event, dict(attributes))
