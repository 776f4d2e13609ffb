"""A fake Notion API: ``POST /v1/search`` over pages and ``GET /v1/pages/{id}``, as documented.

It requires ``Notion-Version`` (400 ``missing_version``) and a valid bearer token (401
``unauthorized``), validates the search body (400 ``validation_error``), lists newest
``last_edited_time`` first with times rounded down to the minute, pages with ``has_more`` /
``next_cursor`` over the live data, refuses expired cursors (400 ``validation_error``), and
records every request's time. Like the real search it leaves out pages in the trash and pages
no longer shared with the integration; ``GET /v1/pages/{id}`` still answers a trashed page
(``in_trash: true``) and answers 404 ``object_not_found`` for one deleted for good or unshared,
400 for an id that is not a UUID. Failures (429 ``rate_limited`` with ``Retry-After``, 5xx — a
502 with an HTML body —, stalls) are injected on demand.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import Fault, FaultQueue, LocalServer, RequestLog

VERSIONS = ("2022-06-28", "2025-09-03", "2026-03-11")


def notion_error(status: int, code: str, message: str) -> JSONResponse:
    """An error in Notion's JSON shape."""
    return JSONResponse(
        {"object": "error", "status": status, "code": code, "message": message},
        status_code=status,
    )


def _minute(moment: dt.datetime) -> str:
    return moment.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:00.000Z")


class FakeNotion:
    """State and behaviour of the fake; serve it with ``async with``."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.pages: dict[str, dict[str, Any]] = {}
        self.unshared: set[str] = set()  # pages the integration can no longer see
        self._order: dict[str, int] = {}  # page id -> edit sequence (tie-break within a minute)
        self._seq = 0
        self._cursors: dict[str, tuple[str, int]] = {}
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.faults = FaultQueue()
        self.log = RequestLog()
        #: After answering this many requests, every cursor handed out so far expires.
        self.expire_cursors_after: int | None = None
        #: Called after each search is answered, with the number of searches answered so far.
        self.after_search: Callable[[int], None] | None = None
        self._searches = 0
        self.app = Starlette(
            routes=[
                Route("/v1/search", self._search, methods=["POST"]),
                Route("/v1/pages/{page_id}", self._get_page, methods=["GET"]),
            ]
        )
        self._server = LocalServer(self.app)

    @property
    def base_url(self) -> str:
        """The value for ``NOTION_API_BASE_URL``."""
        return f"{self._server.url}/v1"

    async def __aenter__(self) -> FakeNotion:
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop()

    # --- state the tests change ------------------------------------------------------------
    def grant(self) -> str:
        """A new integration token."""
        token = "ntn_" + uuid.uuid4().hex
        self.tokens.add(token)
        return token

    def _touch(self, page_id: str) -> None:
        self._seq += 1
        self._order[page_id] = self._seq
        self.pages[page_id]["last_edited_time"] = _minute(self.clock())

    def add_page(self, title: str, *, title_property: str = "Name") -> str:
        """Create a page whose title lives in the property ``title_property``."""
        page_id = str(uuid.uuid4())
        self.pages[page_id] = {
            "object": "page",
            "id": page_id,
            "created_time": _minute(self.clock()),
            "in_trash": False,
            "archived": False,
            "url": f"https://www.notion.so/{page_id.replace('-', '')}",
            "parent": {"type": "workspace", "workspace": True},
            "properties": {},
        }
        self.set_title(page_id, title, title_property=title_property)
        return page_id

    def set_title(self, page_id: str, title: str, *, title_property: str = "Name") -> None:
        """Edit a page's title."""
        self.pages[page_id]["properties"] = {
            "Tags": {"id": "t1", "type": "multi_select", "multi_select": []},
            title_property: {
                "id": "title",
                "type": "title",
                "title": [{"type": "text", "text": {"content": title}, "plain_text": title}],
            },
        }
        self._touch(page_id)

    def trash(self, page_id: str) -> None:
        """Move a page to the trash."""
        self.pages[page_id].update(in_trash=True, archived=True)
        self._touch(page_id)

    def delete(self, page_id: str) -> None:
        """Delete a page for good (it was in the trash first)."""
        self.trash(page_id)
        del self.pages[page_id]

    def unshare(self, page_id: str) -> None:
        """Stop sharing a page with the integration: it is still there, but not for us."""
        self.unshared.add(page_id)

    def _visible(self, page_id: str) -> bool:
        return not self.pages[page_id]["in_trash"] and page_id not in self.unshared

    def live_titles(self) -> dict[str, str]:
        """Titles of the pages the integration can see and that are not in the trash, by id."""
        return {
            i: p["properties"][next(k for k, v in p["properties"].items() if v["type"] == "title")][
                "title"
            ][0]["plain_text"]
            for i, p in self.pages.items()
            if self._visible(i)
        }

    def expire_cursors(self) -> None:
        """Every cursor handed out so far is now refused."""
        self._cursors.clear()

    def fail(
        self,
        status: int,
        code: str = "internal_server_error",
        *,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next ``times`` requests get ``status`` with ``code``."""
        body = {"object": "error", "status": status, "code": code, "message": code}
        self.faults.add(Fault(status=status, body=body, retry_after=retry_after), times)

    def bad_gateway(self, *, times: int = 1) -> None:
        """The next ``times`` requests get a 502 with an HTML body, as a proxy sends it."""
        self.faults.add(Fault(status=502, text="<html><body>502 Bad Gateway</body></html>"), times)

    def stall(self, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` requests answer only after ``seconds``."""
        self.faults.add(Fault(stall=seconds), times)

    # --- the API ---------------------------------------------------------------------------
    def _sort_key(self, page_id: str) -> tuple[str, int]:
        return (self.pages[page_id]["last_edited_time"], self._order[page_id])

    async def _refused(self, request: Request) -> Response | None:
        """The answer to a request without version or valid token, or an injected fault."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.log.add(request.url.path, token)
        if "Notion-Version" not in request.headers:
            return notion_error(
                400,
                "missing_version",
                "Notion-Version header failed validation: "
                "Notion-Version header should be defined, instead was `undefined`.",
            )
        if request.headers["Notion-Version"] not in VERSIONS:
            return notion_error(400, "validation_error", "Notion-Version header is not valid.")
        if token not in self.tokens:
            return notion_error(401, "unauthorized", "API token is invalid.")
        return await self.faults.apply()

    async def _get_page(self, request: Request) -> Response:
        refused = await self._refused(request)
        if refused is not None:
            return refused
        page_id = request.path_params["page_id"]
        try:
            page_id = str(uuid.UUID(page_id))  # Notion takes ids with or without dashes
        except ValueError:
            return notion_error(
                400,
                "validation_error",
                "path failed validation: path.page_id should be a valid uuid",
            )
        if page_id not in self.pages or page_id in self.unshared:
            return notion_error(
                404,
                "object_not_found",
                f"Could not find page with ID: {page_id}. Make sure the relevant pages and "
                "databases are shared with your integration.",
            )
        return JSONResponse(self.pages[page_id])

    async def _search(self, request: Request) -> Response:
        refused = await self._refused(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return notion_error(400, "invalid_json", "Error parsing JSON body.")
        problem = self._invalid(body)
        if problem:
            return notion_error(400, "validation_error", problem)
        ordered = sorted(
            (
                i
                for i in self.pages
                if self._visible(i) and body.get("filter", {}).get("value", "page") == "page"
            ),
            key=self._sort_key,
            reverse=body.get("sort", {}).get("direction", "descending") == "descending",
        )
        if "start_cursor" in body:
            after = self._cursors.get(body["start_cursor"])
            if after is None:
                return notion_error(
                    400,
                    "validation_error",
                    f"The start_cursor provided is invalid: {body['start_cursor']}",
                )
            ordered = [i for i in ordered if self._sort_key(i) < after]
        size = body.get("page_size", 100)
        chunk = ordered[:size]
        has_more = len(ordered) > size
        next_cursor = None
        if has_more:
            next_cursor = str(uuid.uuid4())
            self._cursors[next_cursor] = self._sort_key(chunk[-1])
        if len(self.log.entries) == self.expire_cursors_after:
            self._cursors.clear()
        answer = JSONResponse(
            {
                "object": "list",
                "results": [self.pages[i] for i in chunk],
                "has_more": has_more,
                "next_cursor": next_cursor,
                "type": "page_or_data_source",
                "page_or_data_source": {},
            }
        )
        self._searches += 1
        if self.after_search is not None:
            self.after_search(self._searches)
        return answer

    @staticmethod
    def _invalid(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body failed validation: body should be an object."
        size = body.get("page_size", 100)
        if not isinstance(size, int) or not 1 <= size <= 100:
            return "body failed validation: body.page_size should be a number between 1 and 100."
        query_filter = body.get("filter")
        if query_filter is not None and (
            query_filter.get("property") != "object"
            or query_filter.get("value") not in ("page", "data_source")
        ):
            return (
                'body failed validation: body.filter.value should be `"page"` or `"data_source"`.'
            )
        sort = body.get("sort")
        if sort is not None and (
            sort.get("timestamp") != "last_edited_time"
            or sort.get("direction") not in ("ascending", "descending")
        ):
            return "body failed validation: body.sort.timestamp should be `last_edited_time`."
        return None
