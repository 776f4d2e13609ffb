"""The fakes behave as the real services are documented to (external-apis guide)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogleCalendar]:
    """A running fake Google Calendar with a primary calendar of 5 events."""
    async with FakeGoogleCalendar() as fake:
        for n in range(5):
            fake.put_event("primary", f"e{n}", summary=str(n))
        yield fake


@pytest.fixture
async def notion() -> AsyncIterator[FakeNotion]:
    """A running fake Notion with 3 pages."""
    async with FakeNotion() as fake:
        for n in range(3):
            fake.add_page(f"p{n}")
        yield fake


async def list_events(
    google: FakeGoogleCalendar, token: str, **params: str | int
) -> httpx.Response:
    """One events.list request."""
    async with httpx.AsyncClient() as client:
        return await client.get(
            f"{google.base_url}/calendar/v3/calendars/primary/events",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_google_pages_and_sync_token_only_on_the_last_page(
    google: FakeGoogleCalendar,
) -> None:
    """maxResults=2 gives 3 pages; nextPageToken and nextSyncToken never come together."""
    access, _ = google.grant()
    body = (await list_events(google, access, maxResults=2, singleEvents="true")).json()
    seen = [e["id"] for e in body["items"]]
    while "nextPageToken" in body:
        assert "nextSyncToken" not in body
        body = (
            await list_events(
                google, access, maxResults=2, singleEvents="true", pageToken=body["nextPageToken"]
            )
        ).json()
        seen += [e["id"] for e in body["items"]]
    assert sorted(seen) == [f"e{n}" for n in range(5)] and "nextSyncToken" in body


async def test_google_incremental_sync_returns_tombstones_and_410_when_expired(
    google: FakeGoogleCalendar,
) -> None:
    """A sync token lists only changes, deletions as cancelled; an expired one gives 410."""
    access, _ = google.grant()
    token = (await list_events(google, access, maxResults=10)).json()["nextSyncToken"]
    google.delete_event("primary", "e1")
    google.update_event("primary", "e2", summary="changed")
    body = (await list_events(google, access, maxResults=10, syncToken=token)).json()
    assert {e["id"]: e["status"] for e in body["items"]} == {"e1": "cancelled", "e2": "confirmed"}
    assert body["items"][0] == {"kind": "calendar#event", "id": "e1", "status": "cancelled"}
    google.expire_sync_tokens()
    gone = await list_events(google, access, syncToken=body["nextSyncToken"])
    assert gone.status_code == 410
    assert gone.json()["error"]["errors"][0]["reason"] == "fullSyncRequired"


async def test_google_refuses_sync_token_with_time_min_and_bad_tokens(
    google: FakeGoogleCalendar,
) -> None:
    """A syncToken with timeMin is a 400; an expired access token is a 401 authError."""
    access, _ = google.grant()
    token = (await list_events(google, access)).json()["nextSyncToken"]
    refused = await list_events(google, access, syncToken=token, timeMin="2026-01-01T00:00:00Z")
    assert refused.status_code == 400
    google.expire_access_tokens()
    unauthorized = await list_events(google, access)
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["errors"][0]["reason"] == "authError"


async def test_google_token_endpoint_refreshes_and_refuses_revoked_grants(
    google: FakeGoogleCalendar,
) -> None:
    """A valid refresh token gets a Bearer access token; a revoked one gets invalid_grant."""
    _, refresh = google.grant()
    form = {
        "grant_type": "refresh_token",
        "client_id": google.client_id,
        "client_secret": google.client_secret,
        "refresh_token": refresh,
    }
    async with httpx.AsyncClient() as client:
        ok = (await client.post(google.token_url, data=form)).json()
        assert ok["token_type"] == "Bearer" and ok["expires_in"] > 0
        assert (await list_events(google, ok["access_token"])).status_code == 200
        google.revoke(refresh)
        revoked = await client.post(google.token_url, data=form)
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")


async def test_google_injects_429_with_retry_after(google: FakeGoogleCalendar) -> None:
    """An injected 429 carries Retry-After; the next request is normal again."""
    access, _ = google.grant()
    google.fail(429, "rateLimitExceeded", retry_after=2)
    limited = await list_events(google, access)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
    assert (await list_events(google, access)).status_code == 200


async def test_google_calendar_list_pages_syncs_and_tombstones_removed_calendars(
    google: FakeGoogleCalendar,
) -> None:
    """The calendar list pages like events; its sync token brings removed calendars as deleted."""
    access, _ = google.grant()
    holidays = google.add_calendar("en.usa#holiday@group.v.calendar.google.com", "Holidays")
    team = google.add_calendar("team+ops@group.calendar.google.com", "Team", role="reader")
    headers = {"Authorization": f"Bearer {access}"}
    async with httpx.AsyncClient(base_url=google.base_url, headers=headers) as client:
        url = "/calendar/v3/users/me/calendarList"
        first = (await client.get(url, params={"maxResults": 2})).json()
        second = (
            await client.get(url, params={"maxResults": 2, "pageToken": first["nextPageToken"]})
        ).json()
        entries = first["items"] + second["items"]
        assert {e["id"] for e in entries} == {google.owner, holidays, team}
        assert [e["id"] for e in entries if e.get("primary")] == [google.owner]
        google.remove_calendar(team)
        changes = (await client.get(url, params={"syncToken": second["nextSyncToken"]})).json()
        assert changes["items"] == [
            {"kind": "calendar#calendarListEntry", "id": team, "deleted": True}
        ]
        google.expire_sync_tokens()
        expired = await client.get(url, params={"syncToken": changes["nextSyncToken"]})
        assert expired.status_code == 410


async def test_google_takes_calendar_ids_from_the_decoded_path(
    google: FakeGoogleCalendar,
) -> None:
    """An encoded id reaches its calendar; sent raw, its '#' cuts the path short: 404."""
    access, _ = google.grant()
    holidays = "en.usa#holiday@group.v.calendar.google.com"
    google.put_event(holidays, "new-year", summary="New Year")
    headers = {"Authorization": f"Bearer {access}"}
    async with httpx.AsyncClient(base_url=google.base_url, headers=headers) as client:
        encoded = await client.get(
            "/calendar/v3/calendars/en.usa%23holiday%40group.v.calendar.google.com/events"
        )
        assert [e["id"] for e in encoded.json()["items"]] == ["new-year"]
        raw = await client.get(f"/calendar/v3/calendars/{holidays}/events")
        assert raw.request.url.path == "/calendar/v3/calendars/en.usa"
        assert (raw.status_code, raw.json()["error"]["errors"][0]["reason"]) == (404, "notFound")
        google.remove_calendar(holidays)
        gone = await client.get(
            "/calendar/v3/calendars/en.usa%23holiday%40group.v.calendar.google.com/events"
        )
        assert gone.status_code == 404


async def search(notion: FakeNotion, token: str, body: dict[str, object], **headers: str):  # type: ignore[no-untyped-def]
    """One search request with the Notion-Version header unless overridden."""
    sent = {"Authorization": f"Bearer {token}", "Notion-Version": "2025-09-03", **headers}
    sent = {k: v for k, v in sent.items() if v}
    async with httpx.AsyncClient() as client:
        return await client.post(f"{notion.base_url}/search", json=body, headers=sent)


async def test_notion_requires_version_and_token(notion: FakeNotion) -> None:
    """No Notion-Version: 400 missing_version; a wrong token: 401 unauthorized."""
    token = notion.grant()
    missing = await search(notion, token, {}, **{"Notion-Version": ""})
    assert (missing.status_code, missing.json()["code"]) == (400, "missing_version")
    wrong = await search(notion, "ntn_wrong", {})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "unauthorized")


async def test_notion_lists_newest_first_with_cursors_that_can_expire(notion: FakeNotion) -> None:
    """page_size=2 pages newest first; an expired cursor is a 400 validation_error."""
    token = notion.grant()
    first = (await search(notion, token, {"page_size": 2})).json()
    assert first["has_more"] and len(first["results"]) == 2
    times = [p["last_edited_time"] for p in first["results"]]
    assert times == sorted(times, reverse=True) and all(t.endswith(":00.000Z") for t in times)
    notion.expire_cursors()
    expired = await search(notion, token, {"page_size": 2, "start_cursor": first["next_cursor"]})
    assert (expired.status_code, expired.json()["code"]) == (400, "validation_error")
    too_big = await search(notion, token, {"page_size": 101})
    assert too_big.json()["code"] == "validation_error"


async def test_notion_injects_502_with_html(notion: FakeNotion) -> None:
    """An injected 502 has a non-JSON body, as a proxy in front of Notion sends it."""
    token = notion.grant()
    notion.bad_gateway()
    response = await search(notion, token, {})
    assert response.status_code == 502 and response.text.startswith("<html>")


async def test_notion_search_leaves_out_trashed_deleted_and_unshared_pages(
    notion: FakeNotion,
) -> None:
    """Search lists only shared pages outside the trash; GET tells trashed from gone."""
    token = notion.grant()
    kept, trashed, deleted, unshared = (notion.add_page(t) for t in ("k", "t", "d", "u"))
    notion.trash(trashed)
    notion.delete(deleted)
    notion.unshare(unshared)
    listed = {p["id"] for p in (await search(notion, token, {})).json()["results"]}
    assert kept in listed and listed.isdisjoint({trashed, deleted, unshared})
    assert listed == set(notion.live_titles())
    headers = {"Authorization": f"Bearer {token}", "Notion-Version": "2025-09-03"}
    async with httpx.AsyncClient(base_url=notion.base_url, headers=headers) as client:
        in_trash = await client.get(f"/pages/{trashed}")
        assert in_trash.status_code == 200 and in_trash.json()["in_trash"] is True
        for gone in (deleted, unshared):
            response = await client.get(f"/pages/{gone}")
            assert (response.status_code, response.json()["code"]) == (404, "object_not_found")
        undashed = await client.get(f"/pages/{kept.replace('-', '')}")
        assert undashed.json()["id"] == kept
        bad = await client.get("/pages/not-a-uuid")
        assert (bad.status_code, bad.json()["code"]) == (400, "validation_error")
