"""An OpenAI Responses API agent loop whose tool calls all go through warded.

Offline: the OpenAI client talks to recorded responses (see replay.py).

    pip install -e '.[openai]' && python examples/adapters/openai_responses.py
"""

from __future__ import annotations

from typing import Any

import httpx2
from openai import OpenAI
from openai.types.responses import ResponseFunctionToolCall
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


def run_turn(client: OpenAI, tools: OpenAITools, items: list[Any]) -> None:
    """The model's turn: call it until it answers without function calls."""
    while True:
        response = client.responses.create(
            model="gpt-5.4-mini",
            instructions=SYSTEM,
            input=items,
            tools=tools.response_tools(),  # warded: only the tools this session may use
        )
        items += response.output
        calls = [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]
        if not calls:
            show_model(response.output_text)
            return
        outputs = tools.handle_response(response)  # warded: every call through the gate
        items += outputs
        for call, output in zip(calls, outputs, strict=True):
            show_call(call.name, call.arguments, str(output["output"]))


def main() -> None:
    bank = Bank()
    gate = build_gate(bank)
    tools = OpenAITools(gate, AGENT, Session("openai-responses-demo"))  # warded
    transport = Replay("openai_responses")
    client = OpenAI(api_key="offline", http_client=httpx2.Client(transport=transport))
    items: list[Any] = [{"role": "user", "content": ASK}]
    run_turn(client, tools, items)
    approve_pending(gate)
    items.append({"role": "user", "content": APPROVED})
    run_turn(client, tools, items)
    summary(gate, bank)


if __name__ == "__main__":
    main()
