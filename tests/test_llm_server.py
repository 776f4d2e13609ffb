"""The fake chat completions server behaves like the real API, and the client copes with it."""

from __future__ import annotations

import time

import httpx
import pytest
from pydantic import SecretStr

from jobs.ai.llm import ChatClient, LlmError
from jobs.errors import TransientJobError
from jobs.settings import load_settings
from tests.llm_server import API_KEY, FakeLlm

USER = [{"role": "user", "content": "hi"}]


async def post(server: FakeLlm, body: object, key: str | None = API_KEY) -> httpx.Response:
    """POST ``body`` to the fake's /chat/completions with ``key`` as bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient() as client:
        return await client.post(f"{server.base_url}/chat/completions", json=body, headers=headers)


async def test_fake_checks_the_api_key(llm_server: FakeLlm) -> None:
    """No key and a wrong key get 401 with the API's error body; the right key gets a reply."""
    llm_server.answer("hello")
    missing = await post(llm_server, {"model": "m", "messages": USER}, key=None)
    wrong = await post(llm_server, {"model": "m", "messages": USER}, key="sk-wrong")
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    good = await post(llm_server, {"model": "m", "messages": USER})
    reply = good.json()
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "hello"}
    assert reply["choices"][0]["finish_reason"] == "stop" and reply["usage"]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"messages": USER}, "model parameter"),
        ({"model": "m", "messages": []}, "non-empty"),
        (
            {
                "model": "m",
                "messages": [
                    *USER,
                    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
                    {"role": "user", "content": "and?"},
                ],
            },
            "must be followed by tool messages",
        ),
        (
            {
                "model": "m",
                "messages": [*USER, {"role": "tool", "tool_call_id": "x", "content": "r"}],
            },
            "must answer a tool_call_id",
        ),
        ({"model": "m", "messages": USER, "tool_choice": "auto"}, "only allowed when 'tools'"),
        (
            {
                "model": "m",
                "messages": USER,
                "tools": [{"type": "function", "function": {"name": "a b"}}],
            },
            "invalid tool name",
        ),
    ],
)
async def test_fake_refuses_malformed_requests(
    llm_server: FakeLlm, body: object, problem: str
) -> None:
    """A request the real API would refuse gets 400 invalid_request_error naming the problem."""
    response = await post(llm_server, body)
    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]
    assert llm_server.requests == []


async def test_client_reads_scripted_tool_calls(llm_server: FakeLlm) -> None:
    """Scripted tool calls arrive as ToolCalls with ids, names and the raw argument text."""
    llm_server.call_tools(("get_user_profile", {}), ("search_notion_pages", "{bad json"))
    settings = load_settings(llm_base_url=llm_server.base_url, llm_api_key=SecretStr(API_KEY))
    async with httpx.AsyncClient() as http:
        completion = await ChatClient(http, settings).complete(USER, [], request_timeout=5)
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("get_user_profile", "{}"),
        ("search_notion_pages", "{bad json"),
    ]
    assert completion.finish_reason == "tool_calls" and completion.total_tokens > 0
    assert llm_server.requests[0]["model"] == settings.llm_model


async def test_client_waits_out_429_retry_after_then_succeeds(llm_server: FakeLlm) -> None:
    """A 429 with Retry-After: 1 is retried after at least a second, then the answer is read."""
    llm_server.fail(429, retry_after=1)
    llm_server.answer("after the wait")
    settings = load_settings(llm_base_url=llm_server.base_url, llm_api_key=SecretStr(API_KEY))
    started = time.monotonic()
    async with httpx.AsyncClient() as http:
        completion = await ChatClient(http, settings).complete(USER, [], request_timeout=10)
    assert completion.content == "after the wait"
    assert time.monotonic() - started >= 1.0
    assert len(llm_server.authorizations) == 2


async def test_client_raises_transient_after_repeated_5xx(llm_server: FakeLlm) -> None:
    """Four 503s in a row become TransientJobError, for the job's retry policy to take over."""
    llm_server.fail(503, times=4)
    settings = load_settings(llm_base_url=llm_server.base_url, llm_api_key=SecretStr(API_KEY))
    async with httpx.AsyncClient() as http:
        with pytest.raises(TransientJobError, match="HTTP 503 after 4 attempts"):
            await ChatClient(http, settings, backoff_base=0.01).complete(
                USER, [], request_timeout=10
            )


async def test_client_refused_key_is_permanent_and_not_echoed(llm_server: FakeLlm) -> None:
    """A wrong LLM_API_KEY gives LlmError with the API's message and without the key."""
    settings = load_settings(llm_base_url=llm_server.base_url, llm_api_key=SecretStr("sk-secret-1"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(LlmError) as error:
            await ChatClient(http, settings).complete(USER, [], request_timeout=5)
    assert str(error.value) == "LLM API HTTP 401: Incorrect API key provided."
    assert "sk-secret-1" not in str(error.value)
