"""OpenAI: the gate's tools for Chat Completions and the Responses API.

Three lines in an existing agent loop:

    tools = OpenAITools(gate, principal, session)
    client.chat.completions.create(..., tools=tools.chat_tools())
    messages += tools.handle_chat(completion.choices[0].message)

(or `tools.response_tools()` and `tools.handle_response(response)` with the
Responses API). The tool list is asked of the gate on every call, so a tool
the session can no longer use is gone from the next request. Each function
tool call runs through the gate with the model's tool-call id as the call id,
so a resent id runs at most once; the calls of one response run one after the
other, in the model's order, so labels a call adds (`untrusted`) apply to the
calls after it. Other output (text, reasoning, built-in tools) is left to the
loop.
"""

from __future__ import annotations

from typing import Any

try:
    from openai.types.chat import (
        ChatCompletionFunctionToolParam,
        ChatCompletionMessage,
        ChatCompletionToolMessageParam,
    )
    from openai.types.responses import FunctionToolParam, Response, ResponseFunctionToolCall
    from openai.types.responses.response_input_param import FunctionCallOutput
except ImportError as exc:
    raise ImportError(
        "warded.adapters.openai needs the openai SDK: pip install 'warded[openai]'"
    ) from exc

from warded.adapters.binding import Binding
from warded.adapters.strict import strict_parameters
from warded.adapters.text import decode_arguments, model_text


class OpenAITools(Binding):
    """The tools one principal may see in one session, and their calls, for the OpenAI SDK."""

    def chat_tools(self) -> list[ChatCompletionFunctionToolParam]:
        """Function tool definitions for `chat.completions.create(tools=...)`.

        `strict` is true where the tool's schema allows it (see `warded.adapters.strict`).
        """
        out: list[ChatCompletionFunctionToolParam] = []
        for spec in self.specs():
            parameters, strict = strict_parameters(spec.parameters)
            out.append(
                {
                    "type": "function",
                    "function": {
                        "name": spec.name,
                        "description": spec.description,
                        "parameters": parameters,
                        "strict": strict,
                    },
                }
            )
        return out

    def response_tools(self) -> list[FunctionToolParam]:
        """Function tool definitions for `responses.create(tools=...)`.

        `strict` is always given: the Responses API would otherwise assume true.
        """
        out: list[FunctionToolParam] = []
        for spec in self.specs():
            parameters, strict = strict_parameters(spec.parameters)
            out.append(
                {
                    "type": "function",
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": parameters,
                    "strict": strict,
                }
            )
        return out

    def handle_chat(self, message: ChatCompletionMessage) -> list[ChatCompletionToolMessageParam]:
        """Run the message's function tool calls; one `tool` message per call, in order."""
        return [
            _tool_message(i, self.call(n, decode_arguments(a), i))
            for i, n, a in _chat_calls(message)
        ]

    async def ahandle_chat(
        self, message: ChatCompletionMessage
    ) -> list[ChatCompletionToolMessageParam]:
        """`handle_chat` through `gate.acall`."""
        return [
            _tool_message(i, await self.acall(n, decode_arguments(a), i))
            for i, n, a in _chat_calls(message)
        ]

    def handle_response(self, response: Response) -> list[FunctionCallOutput]:
        """Run the response's function calls; one `function_call_output` item per call, in order."""
        return [
            _call_output(i, self.call(n, decode_arguments(a), i))
            for i, n, a in _response_calls(response)
        ]

    async def ahandle_response(self, response: Response) -> list[FunctionCallOutput]:
        """`handle_response` through `gate.acall`."""
        return [
            _call_output(i, await self.acall(n, decode_arguments(a), i))
            for i, n, a in _response_calls(response)
        ]


def _chat_calls(message: ChatCompletionMessage) -> list[tuple[str, str, str]]:
    """(call id, tool name, arguments) of each function tool call."""
    calls = message.tool_calls or ()
    return [(c.id, c.function.name, c.function.arguments) for c in calls if c.type == "function"]


def _response_calls(response: Response) -> list[tuple[str, str, str]]:
    return [
        (item.call_id, item.name, item.arguments)
        for item in response.output
        if isinstance(item, ResponseFunctionToolCall)
    ]


def _tool_message(call_id: str, result: Any) -> ChatCompletionToolMessageParam:
    return {"role": "tool", "tool_call_id": call_id, "content": model_text(result)}


def _call_output(call_id: str, result: Any) -> FunctionCallOutput:
    return {"type": "function_call_output", "call_id": call_id, "output": model_text(result)}
