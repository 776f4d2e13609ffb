"""A fake Google Calendar API (``events.list``) with its OAuth token endpoint.

It behaves as documented for the real service: paging with ``maxResults``/``pageToken``
(pages may be empty while ``nextPageToken`` says there is more; ``nextSyncToken`` only on the
last page), incremental sync with ``syncToken`` returning deleted events as ``cancelled``
tombstones, 410 ``fullSyncRequired`` for an invalid or expired sync token, 400 for parameters
the real API refuses with ``syncToken``, 401 ``authError`` for a missing or expired access
token, and ``invalid_grant`` for a revoked refresh token. Failures are injected on demand.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import Fault, FaultQueue, LocalServer, RequestLog

FORBIDDEN_WITH_SYNC_TOKEN = (
    "timeMin",
    "timeMax",
    "updatedMin",
    "q",
    "orderBy",
    "iCalUID",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)


def google_error(code: int, reason: str, message: str) -> JSONResponse:
    """An error in Google's JSON shape."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }
    return JSONResponse(body, status_code=code)


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeGoogleCalendar:
    """State and behaviour of the fake; serve it with ``async with``."""

    def __init__(self, *, client_id: str = "client-1", client_secret: str = "secret-1") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.events: dict[str, dict[str, dict[str, Any]]] = {}  # calendar -> id -> resource
        self._changed: dict[tuple[str, str], int] = {}
        self._seq = 0
        self._sync_tokens: dict[str, tuple[str, int]] = {}
        self._pages: dict[str, tuple[tuple[Any, ...], list[list[dict[str, Any]]], str]] = {}
        self.refresh_tokens: set[str] = set()
        self.access_tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.access_token_lifetime = 3600
        self.empty_pages = 0
        self.faults = FaultQueue()
        self.log = RequestLog()
        self.refreshes = 0
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/calendar/v3/calendars/{calendar_id}/events", self._list, methods=["GET"]),
            ]
        )
        self._server = LocalServer(self.app)

    # --- serving ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The value for ``GOOGLE_API_BASE_URL``."""
        return self._server.url

    @property
    def token_url(self) -> str:
        """The value for ``GOOGLE_TOKEN_URL``."""
        return f"{self._server.url}/token"

    async def __aenter__(self) -> FakeGoogleCalendar:
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop()

    # --- state the tests change ------------------------------------------------------------
    def _touch(self, calendar: str, event_id: str) -> None:
        self._seq += 1
        self._changed[(calendar, event_id)] = self._seq

    def put_event(
        self, calendar: str = "primary", event_id: str | None = None, **fields: Any
    ) -> str:
        """Create or replace an event; ``fields`` are resource fields (summary, start, end…)."""
        event_id = event_id or secrets.token_hex(8)
        resource = {"kind": "calendar#event", "id": event_id, "status": "confirmed", **fields}
        resource["updated"] = _stamp()
        resource.setdefault("start", {"dateTime": "2026-05-01T10:00:00+02:00"})
        resource.setdefault("end", {"dateTime": "2026-05-01T11:00:00+02:00"})
        self.events.setdefault(calendar, {})[event_id] = resource
        self._touch(calendar, event_id)
        return event_id

    def update_event(self, calendar: str, event_id: str, **fields: Any) -> None:
        """Change fields of an existing event."""
        resource = self.events[calendar][event_id]
        resource.update(fields, updated=_stamp())
        self._touch(calendar, event_id)

    def delete_event(self, calendar: str, event_id: str) -> None:
        """Delete an event: it stays only as a tombstone for incremental sync."""
        resource = self.events[calendar][event_id]
        tombstone = {"kind": "calendar#event", "id": event_id, "status": "cancelled"}
        for key in ("recurringEventId", "originalStartTime"):
            if key in resource:
                tombstone[key] = resource[key]
        self.events[calendar][event_id] = tombstone
        self._touch(calendar, event_id)

    def put_recurring(
        self, calendar: str, series_id: str, first: dt.datetime, count: int
    ) -> list[str]:
        """A daily series expanded into ``count`` instances (what ``singleEvents=true`` lists)."""
        ids = []
        for n in range(count):
            start = first + dt.timedelta(days=n)
            stamp = start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            ids.append(
                self.put_event(
                    calendar,
                    f"{series_id}_{stamp}",
                    summary=f"series {series_id}",
                    recurringEventId=series_id,
                    originalStartTime={"dateTime": start.isoformat()},
                    start={"dateTime": start.isoformat()},
                    end={"dateTime": (start + dt.timedelta(hours=1)).isoformat()},
                )
            )
        return ids

    def live_events(self, calendar: str = "primary") -> dict[str, dict[str, Any]]:
        """The events a full listing returns, by id."""
        return {
            i: e for i, e in self.events.get(calendar, {}).items() if e["status"] != "cancelled"
        }

    def grant(self, *, access_lifetime: float | None = None) -> tuple[str, str]:
        """A new (access token, refresh token) pair, as after the user's consent."""
        refresh, access = "1//" + secrets.token_urlsafe(16), "ya29." + secrets.token_urlsafe(16)
        self.refresh_tokens.add(refresh)
        self.access_tokens[access] = time.monotonic() + (
            self.access_token_lifetime if access_lifetime is None else access_lifetime
        )
        return access, refresh

    def revoke(self, refresh_token: str) -> None:
        """Revoke a grant: its refresh token now gets ``invalid_grant``."""
        self.refresh_tokens.discard(refresh_token)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired (401)."""
        self.access_tokens.clear()

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far is now invalid (410 ``fullSyncRequired``)."""
        self._sync_tokens.clear()

    def fail(
        self,
        status: int,
        reason: str = "backendError",
        *,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next ``times`` API requests get ``status`` with ``reason``."""
        body = {
            "error": {
                "code": status,
                "message": reason,
                "errors": [{"domain": "global", "reason": reason, "message": reason}],
            }
        }
        self.faults.add(Fault(status=status, body=body, retry_after=retry_after), times)

    def stall(self, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` API requests answer only after ``seconds`` (client timeouts)."""
        self.faults.add(Fault(stall=seconds), times)

    # --- the API ---------------------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Unauthorized"}, status_code=401
            )
        if form.get("refresh_token") not in self.refresh_tokens:
            return JSONResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                status_code=400,
            )
        self.refreshes += 1
        access = "ya29." + secrets.token_urlsafe(16)
        self.access_tokens[access] = time.monotonic() + self.access_token_lifetime
        return JSONResponse(
            {
                "access_token": access,
                "expires_in": self.access_token_lifetime,
                "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/calendar.readonly",
            }
        )

    async def _list(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.log.add(request.url.path, token)
        failure = await self.faults.apply()
        if failure is not None:
            return failure
        if self.access_tokens.get(token, 0) <= time.monotonic():
            return google_error(401, "authError", "Invalid Credentials")
        calendar = request.path_params["calendar_id"]
        if calendar not in self.events:
            return google_error(404, "notFound", "Not Found")
        params = dict(request.query_params)
        try:
            page_size = min(2500, int(params.get("maxResults", "250")))
            if page_size < 1:
                raise ValueError
        except ValueError:
            return google_error(400, "invalid", "Invalid value for: maxResults")
        if "syncToken" in params and any(p in params for p in FORBIDDEN_WITH_SYNC_TOKEN):
            return google_error(400, "invalid", "Sync token cannot be combined with these filters")
        query = (calendar, tuple(sorted((k, v) for k, v in params.items() if k != "pageToken")))
        page_token = params.get("pageToken")
        if page_token is None:
            return self._first_page(calendar, params, page_size, query)
        if page_token not in self._pages or self._pages[page_token][0] != query:
            return google_error(400, "invalid", "Invalid page token value")
        _, pages, sync_token = self._pages.pop(page_token)
        return self._page(pages, sync_token, query)

    def _first_page(
        self, calendar: str, params: dict[str, str], page_size: int, query: tuple[Any, ...]
    ) -> Response:
        single = params.get("singleEvents") == "true"
        if "syncToken" in params:
            known = self._sync_tokens.get(params["syncToken"])
            if known is None or known[0] != calendar:
                return google_error(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            since = known[1]
            items = [
                e for i, e in self.events[calendar].items() if self._changed[(calendar, i)] > since
            ]
        else:
            items = list(self.live_events(calendar).values())
        if not single:
            items = [e for e in items if "recurringEventId" not in e]
        items.sort(key=lambda e: e["id"])
        pages = [[]] * self.empty_pages + [
            items[i : i + page_size] for i in range(0, len(items), page_size)
        ]
        sync_token = "sync-" + secrets.token_urlsafe(12)
        self._sync_tokens[sync_token] = (calendar, self._seq)
        return self._page(pages or [[]], sync_token, query)

    def _page(
        self, pages: list[list[dict[str, Any]]], sync_token: str, query: tuple[Any, ...]
    ) -> Response:
        body: dict[str, Any] = {"kind": "calendar#events", "items": [dict(e) for e in pages[0]]}
        if len(pages) > 1:
            next_token = "page-" + secrets.token_urlsafe(12)
            self._pages[next_token] = (query, pages[1:], sync_token)
            body["nextPageToken"] = next_token
        else:
            body["nextSyncToken"] = sync_token
        return JSONResponse(body)
