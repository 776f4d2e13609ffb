"""Google Calendar ``events.list``, ``calendarList.list`` and the OAuth token endpoint.

Calendar ids are e-mail-like and may hold ``#``, ``@`` and ``+``: every path segment
taken from data is percent-encoded.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

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
    """Lists an account's calendars, and one calendar's events, a page at a time."""

    sender: RetryingSender
    auth: GoogleAuth
    base_url: str

    def _url(self, *segments: str) -> str:
        path = "/".join(quote(segment, safe="") for segment in segments)
        return f"{self.base_url.rstrip('/')}/calendar/v3/{path}"

    async def _get(self, url: str, params: dict[str, str | int]) -> httpx.Response:
        """GET with the account's access token, refreshed once if Google answers 401."""
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
            return response

    async def list_calendars(
        self, *, sync_token: str | None, page_token: str | None, page_size: int
    ) -> dict[str, Any]:
        """One page of the account's calendar list (``calendarList.list``).

        SyncTokenExpired on 410; CalendarSyncError if the list itself is refused (403/404, e.g.
        a grant without the scope); AccountSyncError for anything else.
        """
        params = _paging(sync_token, page_token, min(page_size, 250))
        response = await self._get(self._url("users", "me", "calendarList"), params)
        return _page_or_raise(response, "calendar list")

    async def list_events(
        self, calendar_id: str, *, sync_token: str | None, page_token: str | None, page_size: int
    ) -> dict[str, Any]:
        """One page of ``events.list`` (``singleEvents=true``, the same query every time)."""
        params = {"singleEvents": "true", **_paging(sync_token, page_token, page_size)}
        response = await self._get(self._url("calendars", calendar_id, "events"), params)
        return _page_or_raise(response, f"calendar {calendar_id!r}")


def _paging(sync_token: str | None, page_token: str | None, page_size: int) -> dict[str, str | int]:
    params: dict[str, str | int] = {"maxResults": page_size}
    if sync_token is not None:
        params["syncToken"] = sync_token
    if page_token is not None:
        params["pageToken"] = page_token
    return params


def _page_or_raise(response: httpx.Response, what: str) -> dict[str, Any]:
    """The page in a 200 response, or the error Google's answer means."""
    if response.status_code == 200:
        return json_object(response)
    if response.status_code == 410:
        raise SyncTokenExpired(what)
    reason = google_error_reason(response) or "unknown"
    message = str(json_object(response).get("error", {}).get("message", ""))[:200]
    text = f"{what}: HTTP {response.status_code} {reason}: {message}".rstrip(": ")
    if response.status_code in (403, 404):
        raise CalendarSyncError(text)
    raise AccountSyncError(text)
