"""What the email family tells operators: delivery counts by outcome and failed e-mails.

``jobs.email.deliveries`` (counter) counts delivery attempts by ``email.delivery.outcome``:
``sent``; ``deferred`` (a 4xx reply, a dropped connection or an unreachable server: tried
again later); ``bounced`` (the server refused the message with a 5xx reply); ``failed`` (given
up after ``EMAIL_MAX_ATTEMPTS``, or a message that cannot be sent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from opentelemetry import metrics

from jobs.db.models import EmailStatus
from jobs.email.outbox import Outcome

__all__ = ["count_deliveries", "delivery_outcome", "failure_type"]

_DELIVERIES = metrics.get_meter("jobs.email").create_counter(
    "jobs.email.deliveries", unit="{email}", description="E-mail delivery attempts, by outcome"
)
_ATTRIBUTES = {
    outcome: {"email.delivery.outcome": outcome}
    for outcome in ("sent", "deferred", "bounced", "failed")
}


def delivery_outcome(outcome: Outcome) -> str:
    """``sent``, ``deferred``, ``bounced`` or ``failed``."""
    if outcome.status is EmailStatus.SENT:
        return "sent"
    if outcome.status is EmailStatus.FAILED:
        return "bounced" if (outcome.reply_code or 0) >= 500 else "failed"
    return "deferred"


def count_deliveries(outcomes: Iterable[Outcome]) -> Counter[str]:
    """Count the outcomes on ``jobs.email.deliveries``; returns the counts."""
    counts = Counter(delivery_outcome(outcome) for outcome in outcomes)
    for outcome, count in counts.items():
        _DELIVERIES.add(count, _ATTRIBUTES[outcome])
    return counts


def failure_type(last_error: str | None) -> str:
    """``EmailBounced`` for an e-mail refused with a 5xx reply, else ``EmailFailed``."""
    code = (last_error or "")[:3]
    return "EmailBounced" if code.isdigit() and code.startswith("5") else "EmailFailed"
