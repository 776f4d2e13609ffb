"""A fake Google Calendar API: ``events.list``, ``calendarList.list`` and the OAuth endpoint.

It behaves as documented for the real service: paging with ``maxResults``/``pageToken``
(pages may be empty while ``nextPageToken`` says there is more; ``nextSyncToken`` only on the
last page), incremental sync with ``syncToken`` returning deleted events as ``cancelled``
tombstones and removed calendars as ``deleted`` entries, 410 ``fullSyncRequired`` for an
invalid or expired sync token, 400 for parameters the real API refuses with ``syncToken``, 401
``authError`` for a missing or expired access token, 401 ``invalid_client`` for a wrong client
secret and ``invalid_grant`` for a revoked refresh token. Calendar ids are e-mail-like
(``en.usa#holiday@group.v.calendar.google.com``) and taken from the percent-decoded path, as
Google does; ``primary`` names the owner's calendar; a path that names no resource (an
unencoded ``#`` cuts the path short) is a 404. Failures are injected on demand.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.google_oauth import FakeGoogleOAuth
from tests.fakes.google_paging import GooglePaging, google_error
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


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeGoogleCalendar(FakeGoogleOAuth):
    """State and behaviour of the fake; serve it with ``async with``."""

    def __init__(
        self,
        *,
        client_id: str = "client-1",
        client_secret: str = "secret-1",
        owner: str = "owner@example.com",
    ) -> None:
        super().__init__(client_id=client_id, client_secret=client_secret)
        self.owner = owner  # the id of the primary calendar
        self.calendars: dict[str, dict[str, Any]] = {}  # calendarList entries, tombstones too
        self.events: dict[str, dict[str, dict[str, Any]]] = {}  # calendar -> id -> resource
        self.refused: dict[str, tuple[int, str]] = {}  # calendar -> (status, reason) of events.list
        self.paging = GooglePaging()
        self.faults = FaultQueue()
        self.log = RequestLog()
        self.add_calendar(owner, owner, primary=True)
        self.app = Starlette(
            routes=[
                Route("/token", self.token_endpoint, methods=["POST"]),
                Route("/calendar/v3/users/me/calendarList", self._calendar_list, methods=["GET"]),
                Route("/calendar/v3/calendars/{calendar_id}/events", self._list, methods=["GET"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST"]),
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

    @property
    def empty_pages(self) -> int:
        """Empty pages every listing starts with (legal: only the page token says there is more)."""
        return self.paging.empty_pages

    @empty_pages.setter
    def empty_pages(self, count: int) -> None:
        self.paging.empty_pages = count

    # --- state the tests change ------------------------------------------------------------
    def _resolve(self, calendar: str) -> str:
        return self.owner if calendar == "primary" else calendar

    def _touch(self, calendar: str, event_id: str) -> None:
        self.paging.touch(f"events:{calendar}", event_id)

    def add_calendar(
        self, calendar_id: str, summary: str = "", *, primary: bool = False, role: str = "owner"
    ) -> str:
        """Add a calendar to the account's calendar list (created, or subscribed to)."""
        entry: dict[str, Any] = {
            "kind": "calendar#calendarListEntry",
            "id": calendar_id,
            "summary": summary or calendar_id,
            "timeZone": "Europe/Berlin",
            "accessRole": role,
        }
        if primary:
            entry["primary"] = True
        self.calendars[calendar_id] = entry
        self.events.setdefault(calendar_id, {})
        self.paging.touch("calendarList", calendar_id)
        return calendar_id

    def remove_calendar(self, calendar_id: str) -> None:
        """Delete (or unsubscribe from) a calendar: its events go, its list entry is a tombstone."""
        self.calendars[calendar_id] = {
            "kind": "calendar#calendarListEntry",
            "id": calendar_id,
            "deleted": True,
        }
        del self.events[calendar_id]
        self.paging.touch("calendarList", calendar_id)

    def put_event(
        self, calendar: str = "primary", event_id: str | None = None, **fields: Any
    ) -> str:
        """Create or replace an event; ``fields`` are resource fields (summary, start, end…).

        A calendar not in the list yet is added to it.
        """
        calendar = self._resolve(calendar)
        if calendar not in self.events:
            self.add_calendar(calendar)
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
        calendar = self._resolve(calendar)
        resource = self.events[calendar][event_id]
        resource.update(fields, updated=_stamp())
        self._touch(calendar, event_id)

    def delete_event(self, calendar: str, event_id: str) -> None:
        """Delete an event: it stays only as a tombstone for incremental sync."""
        calendar = self._resolve(calendar)
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
        events = self.events.get(self._resolve(calendar), {})
        return {i: e for i, e in events.items() if e["status"] != "cancelled"}

    def listed_calendars(self) -> set[str]:
        """The ids of the calendars a full calendar list returns."""
        return {i for i, entry in self.calendars.items() if not entry.get("deleted")}

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far is now invalid (410 ``fullSyncRequired``)."""
        self.paging.expire_sync_tokens()

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
    async def _authorized(self, request: Request) -> Response | None:
        """The answer to a request without a valid access token, or an injected fault."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.log.add(request.url.path, token, dict(request.headers))
        failure = await self.faults.apply()
        if failure is not None:
            return failure
        if not self.valid_access_token(token):
            return google_error(401, "authError", "Invalid Credentials")
        return None

    async def _not_found(self, request: Request) -> Response:
        self.log.add(request.url.path, "")
        return google_error(404, "notFound", "Not Found")

    async def _calendar_list(self, request: Request) -> Response:
        refused = await self._authorized(request)
        if refused is not None:
            return refused
        return self.paging.respond(
            "calendarList",
            self.calendars,
            dict(request.query_params),
            kind="calendar#calendarList",
            is_live=lambda entry: not entry.get("deleted"),
            max_results=250,
        )

    async def _list(self, request: Request) -> Response:
        refused = await self._authorized(request)
        if refused is not None:
            return refused
        calendar = self._resolve(request.path_params["calendar_id"])
        if calendar not in self.events:
            return google_error(404, "notFound", "Not Found")
        if calendar in self.refused:
            status, reason = self.refused[calendar]
            return google_error(status, reason, reason)
        params = dict(request.query_params)
        if "syncToken" in params and any(p in params for p in FORBIDDEN_WITH_SYNC_TOKEN):
            return google_error(400, "invalid", "Sync token cannot be combined with these filters")
        single = params.get("singleEvents") == "true"
        return self.paging.respond(
            f"events:{calendar}",
            self.events[calendar],
            params,
            kind="calendar#events",
            is_live=lambda event: event["status"] != "cancelled",
            max_results=2500,
            keep=lambda event: single or "recurringEventId" not in event,
        )
