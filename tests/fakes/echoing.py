"""An upstream that echoes the credentials it was sent in its error text.

Real APIs mostly do not (OpenAI shows a few characters of a wrong key), but proxies and
self-hosted gateways in front of them do, and so do misconfigured OAuth servers. This one
refuses every chat completion with 401 quoting the whole ``Authorization`` header, and every
token refresh with 401 quoting the form it got — the worst case for secrets in error texts.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import LocalServer

__all__ = ["EchoingUpstream"]


class EchoingUpstream:
    """Serve with ``async with``; point ``LLM_BASE_URL`` / ``GOOGLE_TOKEN_URL`` at it."""

    def __init__(self) -> None:
        self.requests = 0
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._complete, methods=["POST"]),
                Route("/token", self._token, methods=["POST"]),
            ]
        )
        self._server = LocalServer(app)

    @property
    def llm_base_url(self) -> str:
        """The value for ``LLM_BASE_URL``."""
        return f"{self._server.url}/v1"

    @property
    def token_url(self) -> str:
        """The value for ``GOOGLE_TOKEN_URL``."""
        return f"{self._server.url}/token"

    async def __aenter__(self) -> EchoingUpstream:
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop()

    async def _complete(self, request: Request) -> Response:
        self.requests += 1
        sent = request.headers.get("authorization", "")
        message = f"Incorrect API key provided: {sent.removeprefix('Bearer ')}"
        body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
        return JSONResponse(body, status_code=401)

    async def _token(self, request: Request) -> Response:
        self.requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        error = f"invalid_client: client_secret={form.get('client_secret')} is not valid"
        return JSONResponse({"error": error}, status_code=401)
