"""How a sync run can end early.

::

    PermanentJobError
    └── AccountSyncError         the account cannot be synced now; recorded on the account
        ├── ReconsentRequired    the refresh token was revoked (``invalid_grant``)
        └── CalendarSyncError    one calendar refused (403 other than rate limits, 404);
                                 recorded on that calendar, the account's others go on
    SyncTokenExpired             Google answered 410: drop the sync token, list everything
    CursorExpired                Notion refused a ``start_cursor``: restart the listing
"""

from __future__ import annotations

from jobs.errors import PermanentJobError

__all__ = [
    "AccountSyncError",
    "CalendarSyncError",
    "CursorExpired",
    "ReconsentRequired",
    "SyncTokenExpired",
]


class AccountSyncError(PermanentJobError):
    """A permanent failure of one account's sync (never carries a token)."""


class ReconsentRequired(AccountSyncError):
    """The user must connect the account again; retrying cannot help."""


class CalendarSyncError(AccountSyncError):
    """One calendar cannot be read (gone, or access withdrawn); the account is fine."""


class SyncTokenExpired(Exception):
    """The stored sync token is no longer valid (HTTP 410 ``fullSyncRequired``)."""


class CursorExpired(Exception):
    """The listing's cursor was refused (HTTP 400 ``validation_error``)."""
