"""A local OpenAI-compatible chat completions server, scripted per test.

It is a real HTTP server (FastAPI served by uvicorn in a thread, on a free port) that checks
what the real API checks — the ``Authorization: Bearer`` key, the request's shape, that every
tool call of an assistant message is answered by a ``tool`` message with its ``tool_call_id``
— and answers with the real API's reply and error formats. Each test scripts the replies:
a final answer, tool calls (with any argument text, malformed JSON included), or an HTTP error
such as 429 with ``Retry-After`` or 503.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["API_KEY", "FakeLlm"]

API_KEY = "sk-test-fake-llm-key"
ROLES = {"system", "developer", "user", "assistant", "tool"}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def _shape_problem(body: Any) -> str | None:
    """What the real API would refuse with 400 in this request body, if anything."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not tools:
            return "'tools' must be a non-empty array"
        for tool in tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            if tool.get("type") != "function" or not isinstance(function, dict):
                return "each tool must be {'type': 'function', 'function': {...}}"
            if not TOOL_NAME.match(str(function.get("name", ""))):
                return f"invalid tool name {function.get('name')!r}"
            if not isinstance(function.get("parameters", {}), dict):
                return "tool parameters must be a JSON schema object"
    if "tool_choice" in body and tools is None:
        return "'tool_choice' is only allowed when 'tools' are specified"
    pending: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            return f"messages[{index}].role must be one of {sorted(ROLES)}"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    f"messages[{index}]: a 'tool' message must answer a tool_call_id of the "
                    "preceding assistant message"
                )
            pending.discard(call_id)
            if not isinstance(message.get("content"), str):
                return f"messages[{index}].content must be a string"
            continue
        if pending:
            return (
                "an assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'; missing: {sorted(pending)}"
            )
        if role == "assistant" and message.get("tool_calls"):
            pending = {call["id"] for call in message["tool_calls"]}
        elif not isinstance(message.get("content"), str):
            return f"messages[{index}].content must be a string"
    if pending:
        return f"tool calls without a response: {sorted(pending)}"
    return None


class FakeLlm:
    """The scripted server; use as a context manager, then script replies and read requests."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self._script: deque[tuple[int, dict[str, Any], dict[str, str]]] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        app = FastAPI()
        app.post("/v1/chat/completions")(self._complete)
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        """The ``LLM_BASE_URL`` of this server."""
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> FakeLlm:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def answer(self, content: str) -> None:
        """Script a final answer."""
        self._push(200, {"role": "assistant", "content": content}, {})

    def call_tools(self, *calls: tuple[str, Any]) -> None:
        """Script one assistant message calling ``(name, arguments)`` tools.

        ``arguments`` that are not a string are JSON-encoded; a string is sent as it is, so a
        test can send malformed JSON.
        """
        tool_calls = [
            {
                "id": f"call_{next(self._ids)}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for name, args in calls
        ]
        self._push(200, {"role": "assistant", "content": None, "tool_calls": tool_calls}, {})

    def fail(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        """Script ``times`` HTTP errors with the real API's error body."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        for _ in range(times):
            self._push(status, {"message": f"scripted {status}", "type": kind}, headers)

    @property
    def unused(self) -> int:
        """How many scripted replies are left."""
        return len(self._script)

    def _push(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self._script.append((status, payload, headers))

    async def _complete(self, request: Request) -> JSONResponse:
        authorization = request.headers.get("authorization")
        self.authorizations.append(authorization)
        if authorization is None:
            return _error(401, "You didn't provide an API key.", "invalid_request_error")
        if authorization != f"Bearer {self.api_key}":
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        problem = _shape_problem(body)
        if problem is not None:
            return _error(400, problem, "invalid_request_error")
        self.requests.append(body)
        with self._lock:
            if not self._script:
                return _error(400, "fake LLM: no scripted reply left", "invalid_request_error")
            status, payload, headers = self._script.popleft()
        if status != 200:
            return JSONResponse({"error": payload}, status_code=status, headers=headers)
        prompt_tokens = len(json.dumps(body["messages"])) // 4
        return JSONResponse(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": payload,
                        "finish_reason": "tool_calls" if payload.get("tool_calls") else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": 20,
                    "total_tokens": prompt_tokens + 20,
                },
            }
        )
