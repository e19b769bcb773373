"""An Anthropic Messages API agent loop whose tool calls all go through warded.

Offline: the Anthropic client talks to recorded responses (see replay.py).

    pip install -e '.[anthropic]' && python examples/adapters/anthropic_messages.py
"""

from __future__ import annotations

from typing import Any

import httpx2
from anthropic import Anthropic
from anthropic.types import TextBlock, ToolUseBlock
from payments import (
    AGENT,
    APPROVED,
    ASK,
    SYSTEM,
    Bank,
    approve_pending,
    build_gate,
    show_call,
    show_model,
    summary,
)
from replay import Replay

from warded import Session
from warded.adapters.anthropic import AnthropicTools


def run_turn(client: Anthropic, tools: AnthropicTools, messages: list[Any]) -> None:
    """The model's turn: call it until it stops asking for tools."""
    while True:
        message = client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=1024,
            system=SYSTEM,
            messages=messages,
            tools=tools.tools(),  # warded: only the tools this session may use
        )
        messages.append({"role": "assistant", "content": message.content})
        uses = [block for block in message.content if isinstance(block, ToolUseBlock)]
        if not uses:
            show_model(" ".join(b.text for b in message.content if isinstance(b, TextBlock)))
            return
        results = tools.handle(message)  # warded: every call through the gate
        messages.append({"role": "user", "content": results})
        for use, result in zip(uses, results, strict=True):
            show_call(use.name, use.input, str(result["content"]))


def main() -> None:
    bank = Bank()
    gate = build_gate(bank)
    tools = AnthropicTools(gate, AGENT, Session("anthropic-demo"))  # warded
    transport = Replay("anthropic_messages")
    client = Anthropic(api_key="offline", http_client=httpx2.Client(transport=transport))
    messages: list[Any] = [{"role": "user", "content": ASK}]
    run_turn(client, tools, messages)
    approve_pending(gate)
    messages.append({"role": "user", "content": APPROVED})
    run_turn(client, tools, messages)
    summary(gate, bank)


if __name__ == "__main__":
    main()
