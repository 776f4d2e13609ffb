"""A small client of the OpenAI-compatible chat completions API (OpenAI, vLLM, Ollama, LiteLLM).

``POST {LLM_BASE_URL}/chat/completions`` with ``Authorization: Bearer <LLM_API_KEY>``.
429 and 5xx are retried briefly inside the call (honouring ``Retry-After``) and then surface
as :class:`jobs.errors.TransientJobError`; other refusals and unreadable replies raise
:class:`LlmError`. The key never appears in an error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from jobs.errors import PermanentJobError
from jobs.http import send_with_retries
from jobs.settings import Settings

__all__ = ["ChatClient", "Completion", "LlmError", "ToolCall"]


class LlmError(PermanentJobError):
    """The LLM API refused the request for good, or answered something unreadable."""


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is the model's raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    """The model's reply to one request."""

    content: str | None
    tool_calls: list[ToolCall]
    finish_reason: str | None
    total_tokens: int

    def as_message(self) -> dict[str, Any]:
        """The reply as the assistant message to send back in the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message


class _Function(BaseModel):
    name: str
    arguments: str


class _ToolCall(BaseModel):
    id: str
    type: str = "function"
    function: _Function


class _Message(BaseModel):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None


class _Usage(BaseModel):
    total_tokens: int = 0


class _Response(BaseModel):
    choices: list[_Choice]
    usage: _Usage | None = None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text
    return str(message)[:300]


class ChatClient:
    """Sends chat completion requests with the shared HTTP client and the LLM settings."""

    def __init__(
        self, http: httpx.AsyncClient, settings: Settings, *, backoff_base: float = 0.5
    ) -> None:
        self._http = http
        self._backoff_base = backoff_base
        self._url = settings.llm_base_url.rstrip("/") + "/chat/completions"
        self._model = settings.llm_model
        self._headers = {"Content-Type": "application/json"}
        if settings.llm_api_key is not None and settings.llm_api_key.get_secret_value():
            self._headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, request_timeout: float
    ) -> Completion:
        """Ask the model for its next message, offering ``tools``, waiting ``request_timeout`` s."""
        body: dict[str, Any] = {"model": self._model, "messages": messages}
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"

        def build() -> httpx.Request:
            return self._http.build_request(
                "POST", self._url, json=body, headers=self._headers, timeout=request_timeout
            )

        response = await send_with_retries(
            self._http, build, backoff_base=self._backoff_base, max_wait=min(30.0, request_timeout)
        )
        if response.status_code != 200:
            raise LlmError(f"LLM API HTTP {response.status_code}: {_error_message(response)}")
        try:
            parsed = _Response.model_validate_json(response.content)
            choice = parsed.choices[0]
        except (ValidationError, IndexError) as error:
            raise LlmError(f"unreadable LLM API reply: {str(error)[:300]}") from None
        return Completion(
            content=choice.message.content,
            tool_calls=[
                ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
                for c in choice.message.tool_calls or []
            ],
            finish_reason=choice.finish_reason,
            total_tokens=parsed.usage.total_tokens if parsed.usage else 0,
        )
