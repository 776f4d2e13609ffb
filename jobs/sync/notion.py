"""Notion's ``POST /v1/search`` for pages, newest edit first, as the sync needs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.settings import Settings
from jobs.sync.errors import AccountSyncError, CursorExpired
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
        url = f"{self.settings.notion_api_base_url.rstrip('/')}/search"
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Notion-Version": self.settings.notion_version,
        }
        response = await self.sender.send(
            lambda: self.sender.client.build_request("POST", url, json=body, headers=headers)
        )
        if response.status_code == 200:
            return json_object(response)
        error = json_object(response)
        code = str(error.get("code", "unknown"))
        if response.status_code == 400 and code == "validation_error" and start_cursor is not None:
            raise CursorExpired(str(error.get("message", ""))[:200])
        message = str(error.get("message", ""))[:200]
        raise AccountSyncError(f"Notion search: HTTP {response.status_code} {code}: {message}")
