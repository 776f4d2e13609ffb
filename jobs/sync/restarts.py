"""A listing started over within a run — Google's 410, a cursor Notion refused — made visible.

Each restart leaves a WARNING line and a ``listing.restart`` event on the current span
(:mod:`jobs.notices`) saying which account and listing, why (``sync.restart.reason``:
``sync_token_expired`` or ``cursor_refused``, as in the ``jobs.sync.restarts`` metric), the
status that said so and the how-manieth restart of the run it is. Calendar ids and page ids
stay out: they can be personal.
"""

from __future__ import annotations

import logging
from typing import Final

from jobs.notices import notice

__all__ = ["CURSOR_REFUSED", "SYNC_TOKEN_EXPIRED", "listing_restarted"]

logger = logging.getLogger("jobs.sync")

SYNC_TOKEN_EXPIRED: Final = "sync_token_expired"  # noqa: S105 - a reason, not a secret
CURSOR_REFUSED: Final = "cursor_refused"

# reason -> (status, what the service said, what the run does now)
_REASONS = {
    SYNC_TOKEN_EXPIRED: (410, "sync token expired", "listing everything again"),
    CURSOR_REFUSED: (400, "cursor refused", "listing from the top again"),
}


def listing_restarted(
    provider: str, account_id: int, listing: str, reason: str, attempt: int
) -> None:
    """Tell the log and the current span that ``listing`` of an account starts over."""
    status, said, doing = _REASONS[reason]
    kind = "google account" if provider == "google" else "notion integration"
    notice(
        logger,
        "listing.restart",
        f"{kind} {account_id}: {listing}: HTTP {status} {said}, {doing} (restart {attempt})",
        {
            "sync.provider": provider,
            "sync.listing": listing,
            "sync.restart.reason": reason,
            "http.response.status_code": status,
            "jobs.attempt": attempt,
            "jobs.wait.seconds": 0.0,
        },
    )
