"""What the sync family tells operators: account runs by resulting state, listing restarts.

``jobs.sync.accounts`` (counter) counts finished account syncs by ``sync.provider``
(``google``, ``notion``) and the ``sync.account.state`` they left the account in (``active``,
``error``, ``needs_reconsent``). ``jobs.sync.restarts`` (counter) counts listings started over
within a run, by provider and ``sync.restart.reason`` (``sync_token_expired``: Google's 410;
``cursor_refused``: Notion refused a cursor).
"""

from __future__ import annotations

from opentelemetry import metrics

__all__ = ["count_account_run", "count_restarts"]

_meter = metrics.get_meter("jobs.sync")
_ACCOUNTS = _meter.create_counter(
    "jobs.sync.accounts", unit="{account}", description="Account syncs, by resulting state"
)
_RESTARTS = _meter.create_counter(
    "jobs.sync.restarts", unit="{restart}", description="Listings started over within a sync"
)


def count_account_run(provider: str, state: str) -> None:
    """Count one finished sync of a ``provider`` account that left it in ``state``."""
    _ACCOUNTS.add(1, {"sync.provider": provider, "sync.account.state": state})


def count_restarts(provider: str, reason: str, count: int) -> None:
    """Count ``count`` listings started over for ``reason``."""
    if count:
        _RESTARTS.add(count, {"sync.provider": provider, "sync.restart.reason": reason})
