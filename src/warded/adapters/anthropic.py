"""Anthropic: the gate's tools for the Messages API.

Three lines in an existing agent loop:

    tools = AnthropicTools(gate, principal, session)
    client.messages.create(..., tools=tools.tools())
    messages.append({"role": "user", "content": tools.handle(message)})

The tool list is asked of the gate on every call, so a tool the session can
no longer use is gone from the next request. Each `tool_use` block runs
through the gate with its id as the call id (a resent id runs at most once),
one after the other in the model's order, and is answered by a `tool_result`
block; refusals and tool failures carry `is_error: true`.
"""

from __future__ import annotations

import copy
from typing import Any

try:
    from anthropic.types import Message, ToolParam, ToolResultBlockParam, ToolUseBlock
except ImportError as exc:
    raise ImportError(
        "warded.adapters.anthropic needs the anthropic SDK: pip install 'warded[anthropic]'"
    ) from exc

from warded.adapters.binding import Binding
from warded.adapters.text import is_error, model_text


class AnthropicTools(Binding):
    """The tools one principal may see in one session, and their calls, for the Anthropic SDK."""

    def tools(self) -> list[ToolParam]:
        """Tool definitions for `messages.create(tools=...)`."""
        return [
            {
                "name": spec.name,
                "description": spec.description,
                "input_schema": copy.deepcopy(dict(spec.parameters)),
            }
            for spec in self.specs()
        ]

    def handle(self, message: Message) -> list[ToolResultBlockParam]:
        """Run the message's `tool_use` blocks; one `tool_result` block per block, in order."""
        return [
            _result(block.id, self.call(block.name, block.input, block.id))
            for block in message.content
            if isinstance(block, ToolUseBlock)
        ]

    async def ahandle(self, message: Message) -> list[ToolResultBlockParam]:
        """`handle` through `gate.acall`."""
        return [
            _result(block.id, await self.acall(block.name, block.input, block.id))
            for block in message.content
            if isinstance(block, ToolUseBlock)
        ]


def _result(tool_use_id: str, result: Any) -> ToolResultBlockParam:
    return {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": model_text(result),
        "is_error": is_error(result),
    }
