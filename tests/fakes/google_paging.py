"""Google's list paging and sync tokens, for the fake's ``events.list`` and calendar list.

A listing without ``syncToken`` returns the live items; with one, every item changed since the
token was issued (deleted ones as tombstones), or 410 ``fullSyncRequired`` for a token it does
not know. Pages may be empty while ``nextPageToken`` says there is more; ``nextSyncToken`` comes
only on the last page; a page token is valid only with the query that made it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

__all__ = ["GooglePaging", "google_error"]

Item = dict[str, Any]


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


class GooglePaging:
    """The change sequence of every listed collection, and the tokens handed out over it."""

    def __init__(self) -> None:
        self._changed: dict[tuple[str, str], int] = {}
        self.seq = 0
        self._sync_tokens: dict[str, tuple[str, int]] = {}
        self._pages: dict[str, tuple[tuple[Any, ...], list[list[Item]], str]] = {}
        #: Empty pages served before the items of every first page (they are legal).
        self.empty_pages = 0

    def touch(self, collection: str, item_id: str) -> None:
        """Note that an item of ``collection`` changed now."""
        self.seq += 1
        self._changed[(collection, item_id)] = self.seq

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far is now invalid."""
        self._sync_tokens.clear()

    def respond(
        self,
        collection: str,
        items: dict[str, Item],
        params: dict[str, str],
        *,
        kind: str,
        is_live: Callable[[Item], bool],
        max_results: int,
        keep: Callable[[Item], bool] = lambda _: True,
    ) -> Response:
        """One page of a listing of ``items`` (by id), as the query ``params`` asks."""
        try:
            page_size = min(max_results, int(params.get("maxResults", str(max_results))))
            if page_size < 1:
                raise ValueError
        except ValueError:
            return google_error(400, "invalid", "Invalid value for: maxResults")
        query = (collection, tuple(sorted((k, v) for k, v in params.items() if k != "pageToken")))
        page_token = params.get("pageToken")
        if page_token is not None:
            if page_token not in self._pages or self._pages[page_token][0] != query:
                return google_error(400, "invalid", "Invalid page token value")
            _, pages, sync_token = self._pages.pop(page_token)
            return self._page(kind, pages, sync_token, query)
        if "syncToken" in params:
            known = self._sync_tokens.get(params["syncToken"])
            if known is None or known[0] != collection:
                return google_error(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            chosen = [i for k, i in items.items() if self._changed[(collection, k)] > known[1]]
        else:
            chosen = [i for i in items.values() if is_live(i)]
        chosen = sorted((i for i in chosen if keep(i)), key=lambda i: str(i["id"]))
        pages = [[]] * self.empty_pages + [
            chosen[i : i + page_size] for i in range(0, len(chosen), page_size)
        ]
        sync_token = "sync-" + secrets.token_urlsafe(12)
        self._sync_tokens[sync_token] = (collection, self.seq)
        return self._page(kind, pages or [[]], sync_token, query)

    def _page(
        self, kind: str, pages: list[list[Item]], sync_token: str, query: tuple[Any, ...]
    ) -> Response:
        body: dict[str, Any] = {"kind": kind, "items": [dict(i) for i in pages[0]]}
        if len(pages) > 1:
            next_token = "page-" + secrets.token_urlsafe(12)
            self._pages[next_token] = (query, pages[1:], sync_token)
            body["nextPageToken"] = next_token
        else:
            body["nextSyncToken"] = sync_token
        return JSONResponse(body)
