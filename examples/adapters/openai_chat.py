"""An OpenAI Chat Completions agent loop whose tool calls all go through warded.

Offline: the OpenAI client talks to recorded responses (see replay.py).

    pip install -e '.[openai]' && python examples/adapters/openai_chat.py
"""

from __future__ import annotations

from typing import Any

import httpx2
from openai import OpenAI
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
from warded.adapters.openai import OpenAITools


def run_turn(client: OpenAI, tools: OpenAITools, messages: list[Any]) -> None:
    """The model's turn: call it until it answers without tool calls."""
    while True:
        completion = client.chat.completions.create(
            model="gpt-5.4-mini",
            messages=messages,
            tools=tools.chat_tools(),  # warded: only the tools this session may use
        )
        message = completion.choices[0].message
        messages.append(message)
        if not message.tool_calls:
            show_model(message.content or "")
            return
        results = tools.handle_chat(message)  # warded: every call through the gate
        messages.extend(results)
        for call, result in zip(message.tool_calls, results, strict=True):
            if call.type == "function":
                show_call(call.function.name, call.function.arguments, str(result["content"]))


def main() -> None:
    bank = Bank()
    gate = build_gate(bank)
    tools = OpenAITools(gate, AGENT, Session("openai-chat-demo"))  # warded
    client = OpenAI(api_key="offline", http_client=httpx2.Client(transport=Replay("openai_chat")))
    messages: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK}]
    run_turn(client, tools, messages)
    approve_pending(gate)
    messages.append({"role": "user", "content": APPROVED})
    run_turn(client, tools, messages)
    summary(gate, bank)


if __name__ == "__main__":
    main()
