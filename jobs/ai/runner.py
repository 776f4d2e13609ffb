"""One run of an AI task: the bounded conversation between the model and the tools.

The loop ends with the model's answer, or with an error when it has used ``LLM_MAX_STEPS``
requests, ``LLM_MAX_TOKENS`` tokens or ``LLM_TIMEOUT`` seconds. Every step and every tool call
(with its arguments and outcome) is kept on the :class:`Conversation`, also when the loop is
cut short, so the run record shows how far it got.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from jobs.ai.llm import ChatClient
from jobs.ai.tools import Tool, ToolScope, call_tool, tool_schemas

__all__ = ["Conversation", "RunLimits", "system_prompt"]

#: Tool results longer than this are cut in the run record (the model gets them whole).
RECORDED_RESULT_CHARS = 2000


@dataclass(frozen=True)
class RunLimits:
    """The bounds of one run."""

    max_steps: int
    max_tokens: int
    timeout: float


def system_prompt(display_name: str, zone: ZoneInfo, now: dt.datetime, title: str) -> str:
    """The instructions the model gets before the user's task."""
    local = now.astimezone(zone).isoformat(timespec="minutes")
    return (
        "You are the personal assistant of "
        f"{display_name or 'the user'}, carrying out one of their scheduled tasks"
        f"{f' ({title})' if title else ''} while they are away. Use the tools to read their "
        "calendar, Notion pages and profile, to e-mail them, or to manage their scheduled tasks. "
        f"Their time zone is {zone.key}; it is now {local} there. "
        "Finish with a short answer saying what you did."
    )


@dataclass
class Conversation:
    """The messages, steps, tool calls and tokens of one run."""

    client: ChatClient
    tools: Sequence[Tool]
    scope: ToolScope
    limits: RunLimits
    messages: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0

    async def run(self, system: str, instruction: str) -> tuple[str | None, str | None]:
        """Talk until the model answers; ``(answer, None)`` or ``(None, error)``.

        Raises what the LLM client raises (transient or permanent API failures).
        """
        self.messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": instruction},
        ]
        deadline = time.monotonic() + self.limits.timeout
        try:
            async with asyncio.timeout(self.limits.timeout):
                return await self._loop(deadline)
        except TimeoutError:
            if time.monotonic() < deadline:
                raise
            return None, f"the run took longer than {self.limits.timeout:g}s"

    async def _loop(self, deadline: float) -> tuple[str | None, str | None]:
        schemas = tool_schemas(self.tools)
        for step in range(1, self.limits.max_steps + 1):
            remaining = max(0.1, deadline - time.monotonic())
            completion = await self.client.complete(
                self.messages, schemas, request_timeout=remaining
            )
            self.tokens += completion.total_tokens
            self.steps.append(
                {
                    "step": step,
                    "finish_reason": completion.finish_reason,
                    "content": completion.content,
                    "tool_calls": [call.name for call in completion.tool_calls],
                    "tokens": completion.total_tokens,
                }
            )
            if not completion.tool_calls:
                return completion.content or "", None
            self.messages.append(completion.as_message())
            for call in completion.tool_calls:
                result = await call_tool(self.tools, self.scope, call.name, call.arguments)
                self.messages.append(result.message(call.id))
                recorded = self.messages[-1]["content"]
                self.tool_calls.append(
                    {
                        "step": step,
                        "id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                        "ok": result.ok,
                        "result": recorded[:RECORDED_RESULT_CHARS],
                    }
                )
            if self.tokens > self.limits.max_tokens:
                return None, f"used {self.tokens} tokens, more than {self.limits.max_tokens}"
        return None, f"no answer after {self.limits.max_steps} steps"
