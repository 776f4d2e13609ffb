"""Tool calling: what a tool is, whose data it may touch, and how a call is answered.

Every tool runs inside a :class:`ToolScope` the runner builds for one run of one task. The
user id lives only there, never in a tool's arguments, so a tool cannot be asked about another
user's data. Whatever goes wrong with a call — arguments that are not JSON, of the wrong
types, a tool that does not exist, a row that is not the user's — becomes a tool error message
for the model to read and correct, never an exception of the job.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import JobsPool

__all__ = ["Tool", "ToolError", "ToolResult", "ToolScope", "call_tool", "tool_schemas"]


class ToolError(Exception):
    """A tool refused a call; the message is shown to the model."""


@dataclass
class ToolScope:
    """The one user, task and run a tool call acts for, and the clients it may use."""

    user_id: int
    task_id: int
    run_id: int
    zone: ZoneInfo
    sessions: async_sessionmaker[AsyncSession]
    pool: JobsPool
    emails_queued: int = 0
    tasks_created: int = 0

    def aware(self, value: dt.datetime) -> dt.datetime:
        """``value`` as an aware datetime; a naive one is read in the user's zone."""
        return value if value.tzinfo is not None else value.replace(tzinfo=self.zone)

    def local(self, value: dt.datetime | None) -> str | None:
        """``value`` as ISO 8601 in the user's zone, with its offset (what the model reads)."""
        return None if value is None else value.astimezone(self.zone).isoformat()


ToolHandler = Callable[[ToolScope, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, its arguments and its code."""

    name: str
    description: str
    arguments: type[BaseModel]
    handler: ToolHandler

    def schema(self) -> dict[str, Any]:
        """The tool as the chat completions API's ``tools`` entry."""
        parameters = self.arguments.model_json_schema()
        parameters.pop("title", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }


@dataclass
class ToolResult:
    """The outcome of one call, as recorded and as sent back to the model."""

    ok: bool
    content: dict[str, Any] = field(default_factory=dict)

    def message(self, call_id: str) -> dict[str, Any]:
        """The ``role: tool`` message answering the call."""
        return {
            "role": "tool",
            "tool_call_id": call_id,
            "content": json.dumps(self.content, default=str),
        }


def tool_schemas(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """The ``tools`` list of a request."""
    return [tool.schema() for tool in tools]


def _validation_message(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in item['loc']) or '(arguments)'}: {item['msg']}"
        for item in error.errors(include_url=False)
    ]
    return "invalid arguments: " + "; ".join(problems)


async def call_tool(
    tools: Sequence[Tool], scope: ToolScope, name: str, raw_arguments: str
) -> ToolResult:
    """Run the call ``name(raw_arguments)`` in ``scope``; any refusal is a tool error."""
    by_name = {tool.name: tool for tool in tools}
    tool = by_name.get(name)
    if tool is None:
        known = ", ".join(sorted(by_name))
        return ToolResult(False, {"error": f"unknown tool {name!r}; tools: {known}"})
    try:
        decoded = json.loads(raw_arguments or "{}")
    except json.JSONDecodeError as error:
        return ToolResult(False, {"error": f"arguments are not valid JSON: {error}"})
    if not isinstance(decoded, dict):
        return ToolResult(False, {"error": "arguments must be a JSON object"})
    try:
        arguments = tool.arguments.model_validate(decoded)
    except ValidationError as error:
        return ToolResult(False, {"error": _validation_message(error)})
    try:
        result = await tool.handler(scope, arguments)
    except ToolError as error:
        return ToolResult(False, {"error": str(error)})
    return ToolResult(True, {"result": result})
