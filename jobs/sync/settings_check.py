"""What a sync worker needs before it starts: the token key and the Google OAuth client."""

from __future__ import annotations

from jobs.errors import ConfigurationError
from jobs.settings import Settings
from jobs.sync.tokens import cipher_from_settings

__all__ = ["check_sync_settings"]


def check_sync_settings(settings: Settings) -> None:
    """ConfigurationError, in one line naming the settings, if the sync jobs cannot work."""
    cipher_from_settings(settings)
    secret = settings.google_client_secret
    missing = [
        name
        for name, value in (
            ("GOOGLE_CLIENT_ID", settings.google_client_id),
            ("GOOGLE_CLIENT_SECRET", secret.get_secret_value() if secret else None),
        )
        if not (value or "").strip()
    ]
    if missing:
        raise ConfigurationError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; the sync "
            "jobs need the Google OAuth client the users connected through to refresh their "
            "calendar tokens"
        )
