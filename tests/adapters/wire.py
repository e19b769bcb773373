"""Model responses in each API's wire format, and an HTTP transport that replays them.

The tests hand these bodies to the SDKs, which parse them into their own types
(through `Type.model_validate` or their HTTP client), as they would a live answer.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

from warded import Refusal

KNOWN = "GB33BUKB20201555555555"
PAY = {"recipient": KNOWN, "amount": 42.5, "subject": "paper"}
LARGE = {"recipient": KNOWN, "amount": 1200, "subject": "laptop"}
Call = tuple[str, str, Any]  # (call id, tool name, arguments: a value, or JSON text as sent)


def _text(args: Any) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def chat_body(*calls: Call, text: str | None = None) -> dict[str, Any]:
    """A Chat Completions response body with these function tool calls."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": _text(a)}}
            for i, n, a in calls
        ]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1767258000,
        "model": "gpt-5.4-mini",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def response_body(*calls: Call, text: str | None = None) -> dict[str, Any]:
    """A Responses API body with these function calls (and a message, given text)."""
    output: list[dict[str, Any]] = []
    if text is not None:
        output.append(
            {
                "type": "message",
                "id": "msg_test",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    output += [
        {
            "type": "function_call",
            "id": f"fc_{i}",
            "call_id": i,
            "name": n,
            "arguments": _text(a),
            "status": "completed",
        }
        for i, n, a in calls
    ]
    return {
        "id": "resp_test",
        "object": "response",
        "created_at": 1767258000,
        "status": "completed",
        "model": "gpt-5.4-mini",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        },
    }


def anthropic_body(*calls: Call, text: str | None = None) -> dict[str, Any]:
    """A Messages API body with these `tool_use` blocks."""
    content: list[dict[str, Any]] = [] if text is None else [{"type": "text", "text": text}]
    content += [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in calls]
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content,
        "stop_reason": "tool_use" if calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


class Replay(httpx2.MockTransport):
    """Answers each request with the next body and keeps the request bodies sent."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.bodies = list(bodies)
        self.sent: list[dict[str, Any]] = []
        super().__init__(self._answer)

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append(json.loads(request.content))
        return httpx2.Response(200, json=self.bodies[len(self.sent) - 1])


def without_ref(text: str) -> dict[str, Any]:
    """A refusal as the model saw it, with the per-call audit reference left out."""
    seen = json.loads(text)
    assert seen["refused"] is True
    assert isinstance(seen.pop("ref"), str)
    return dict(seen)


def is_refusal(text: str, code: str, **fields: Any) -> bool:
    """Whether the text is exactly `Refusal(code, ...).to_model()`, for the ref it carries."""
    ref = json.loads(text).get("ref")
    return isinstance(ref, str) and text == Refusal(code, ref=ref, **fields).to_model()  # type: ignore[arg-type]
