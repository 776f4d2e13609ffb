"""Notion's ``POST /v1/search`` (pages, newest edit first) and ``GET /v1/pages/{id}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from jobs.settings import Settings
from jobs.sync.errors import AccountSyncError, CursorExpired, ReconsentRequired
from jobs.sync.transport import RetryingSender, json_object

__all__ = ["NotionClient", "page_title"]


def page_title(page: dict[str, Any]) -> str:
    """The plain text of the page's title property (the one whose ``type`` is ``title``)."""
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return "".join(str(item.get("plain_text", "")) for item in prop.get("title") or [])
    return ""


@dataclass
class NotionClient:
    """Searches one integration's pages."""

    sender: RetryingSender
    settings: Settings
    token: str

    @property
    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Notion-Version": self.settings.notion_version,
        }

    def _url(self, *segments: str) -> str:
        path = "/".join(quote(segment, safe="") for segment in segments)
        return f"{self.settings.notion_api_base_url.rstrip('/')}/{path}"

    async def get_page(self, page_id: str) -> dict[str, Any] | None:
        """The page as Notion has it now (``in_trash`` if trashed); None if deleted or unshared.

        Notion answers 404 ``object_not_found`` both for a page deleted for good and for one no
        longer shared with the integration. AccountSyncError for other refusals.
        """
        url = self._url("pages", page_id)
        response = await self.sender.send(
            lambda: self.sender.client.build_request("GET", url, headers=self._headers)
        )
        if response.status_code == 200:
            return json_object(response)
        if response.status_code == 404 and json_object(response).get("code") == "object_not_found":
            return None
        raise _refusal(f"Notion page {page_id}", response)

    async def search_pages(self, *, start_cursor: str | None, page_size: int) -> dict[str, Any]:
        """One page of the search, newest ``last_edited_time`` first.

        CursorExpired if Notion refuses ``start_cursor``; AccountSyncError for other 4xx.
        """
        body: dict[str, Any] = {
            "filter": {"property": "object", "value": "page"},
            "sort": {"timestamp": "last_edited_time", "direction": "descending"},
            "page_size": page_size,
        }
        if start_cursor is not None:
            body["start_cursor"] = start_cursor
        url = self._url("search")
        response = await self.sender.send(
            lambda: self.sender.client.build_request("POST", url, json=body, headers=self._headers)
        )
        if response.status_code == 200:
            return json_object(response)
        error = json_object(response)
        if (
            response.status_code == 400
            and error.get("code") == "validation_error"
            and start_cursor is not None
        ):
            raise CursorExpired(str(error.get("message", ""))[:200])
        raise _refusal("Notion search", response)


def _refusal(what: str, response: httpx.Response) -> AccountSyncError:
    """The error for a response Notion will not change its mind about.

    401 means the integration's token was revoked (the user removed the connection): only the
    user can fix that, so it is ReconsentRequired.
    """
    error = json_object(response)
    code = str(error.get("code", "unknown"))
    message = str(error.get("message", ""))[:200]
    text = f"{what}: HTTP {response.status_code} {code}: {message}"
    return ReconsentRequired(text) if response.status_code == 401 else AccountSyncError(text)
