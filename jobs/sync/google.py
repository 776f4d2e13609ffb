"""Google Calendar ``events.list`` and the OAuth token endpoint, as the sync needs them."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jobs.db.base import utcnow
from jobs.settings import Settings
from jobs.sync.errors import (
    AccountSyncError,
    CalendarSyncError,
    ReconsentRequired,
    SyncTokenExpired,
)
from jobs.sync.transport import RetryingSender, google_error_reason, json_object

__all__ = ["GoogleAuth", "GoogleCalendarClient", "TokenRefreshed"]

#: Refresh this long before the access token's stated expiry.
EXPIRY_MARGIN = dt.timedelta(seconds=60)

TokenRefreshed = Callable[[str, dt.datetime, str], Awaitable[None]]


@dataclass
class GoogleAuth:
    """An account's access token, refreshed through the OAuth token endpoint when needed."""

    sender: RetryingSender
    settings: Settings
    access_token: str | None
    expires_at: dt.datetime | None
    refresh_token: str | None
    on_refresh: TokenRefreshed

    async def current(self) -> str:
        """A usable access token, refreshed first if it is missing or about to expire."""
        if (
            self.access_token is None
            or self.expires_at is None
            or self.expires_at - EXPIRY_MARGIN <= utcnow()
        ):
            await self.refresh()
        assert self.access_token is not None
        return self.access_token

    async def refresh(self) -> None:
        """Get a new access token; ReconsentRequired on ``invalid_grant``."""
        if self.refresh_token is None:
            raise ReconsentRequired("no refresh token stored; the user must connect again")
        secret = self.settings.google_client_secret
        form = {
            "grant_type": "refresh_token",
            "client_id": self.settings.google_client_id or "",
            "client_secret": secret.get_secret_value() if secret else "",
            "refresh_token": self.refresh_token,
        }
        response = await self.sender.send(
            lambda: self.sender.client.build_request(
                "POST", self.settings.google_token_url, data=form
            )
        )
        body = json_object(response)
        if response.status_code == 400 and body.get("error") == "invalid_grant":
            raise ReconsentRequired("Google refused the refresh token (invalid_grant)")
        if response.status_code != 200 or "access_token" not in body:
            raise AccountSyncError(
                f"token refresh failed: HTTP {response.status_code} {body.get('error', '')}".strip()
            )
        self.access_token = str(body["access_token"])
        self.expires_at = utcnow() + dt.timedelta(seconds=float(body.get("expires_in", 3600)))
        self.refresh_token = str(body.get("refresh_token") or self.refresh_token)
        await self.on_refresh(self.access_token, self.expires_at, self.refresh_token)


@dataclass
class GoogleCalendarClient:
    """Lists one calendar's events a page at a time."""

    sender: RetryingSender
    auth: GoogleAuth
    base_url: str

    async def list_events(
        self, calendar_id: str, *, sync_token: str | None, page_token: str | None, page_size: int
    ) -> dict[str, Any]:
        """One page of ``events.list`` (``singleEvents=true``, the same query every time)."""
        params: dict[str, str | int] = {"singleEvents": "true", "maxResults": page_size}
        if sync_token is not None:
            params["syncToken"] = sync_token
        if page_token is not None:
            params["pageToken"] = page_token
        url = f"{self.base_url.rstrip('/')}/calendar/v3/calendars/{calendar_id}/events"
        refreshed = False
        while True:
            headers = {"Authorization": f"Bearer {await self.auth.current()}"}
            response = await self.sender.send(
                functools.partial(
                    self.sender.client.build_request, "GET", url, params=params, headers=headers
                )
            )
            if response.status_code == 401 and not refreshed:
                refreshed = True
                await self.auth.refresh()
                continue
            break
        if response.status_code == 200:
            return json_object(response)
        if response.status_code == 410:
            raise SyncTokenExpired(calendar_id)
        reason = google_error_reason(response) or "unknown"
        message = str(json_object(response).get("error", {}).get("message", ""))[:200]
        text = f"calendar {calendar_id!r}: HTTP {response.status_code} {reason}: {message}"
        if response.status_code in (403, 404):
            raise CalendarSyncError(text.rstrip(": "))
        raise AccountSyncError(text.rstrip(": "))
