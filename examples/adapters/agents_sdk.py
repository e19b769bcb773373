"""An OpenAI Agents SDK agent whose tool calls all go through warded.

Offline: the agent's OpenAI client talks to recorded responses (see replay.py).

    pip install -e '.[agents]' && python examples/adapters/agents_sdk.py
"""

from __future__ import annotations

import asyncio

import httpx2
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, set_tracing_disabled
from agents.items import ToolCallItem, ToolCallOutputItem
from openai import AsyncOpenAI
from openai.types.responses import ResponseFunctionToolCall
from payments import (
    AGENT,
    APPROVED,
    ASK,
    SYSTEM,
    Bank,
    approve_pending,
    build_gate,
    call_text,
    show_call,
    show_model,
    summary,
)
from replay import Replay

from warded import Session
from warded.adapters.agents import function_tools


async def main() -> None:
    set_tracing_disabled(True)  # offline: no traces exported
    bank = Bank()
    gate = build_gate(bank)
    client = AsyncOpenAI(
        api_key="offline", http_client=httpx2.AsyncClient(transport=Replay("openai_responses"))
    )
    agent = Agent(
        name="billing-bot",
        instructions=SYSTEM,
        model=OpenAIResponsesModel(model="gpt-5.4-mini", openai_client=client),
        tools=function_tools(gate, AGENT, Session("agents-sdk-demo")),  # warded
    )
    # A call to a tool the model was not offered is answered, not raised (nothing runs).
    config = RunConfig(tool_not_found_behavior="return_error_to_model")
    result = await Runner.run(agent, ASK, run_config=config)
    show(result.new_items, result.final_output)
    approve_pending(gate)
    follow_up = [*result.to_input_list(), {"role": "user", "content": APPROVED}]
    result = await Runner.run(agent, follow_up, run_config=config)
    show(result.new_items, result.final_output)
    summary(gate, bank)


def show(items: list[object], final: object) -> None:
    """The run's tool calls with what the model saw, then its answer."""
    calls = {}
    for item in items:
        if isinstance(item, ToolCallItem) and isinstance(item.raw_item, ResponseFunctionToolCall):
            calls[item.raw_item.call_id] = item.raw_item
        elif isinstance(item, ToolCallOutputItem):
            call = calls[item.raw_item["call_id"]]
            if item.output == f"Tool '{call.name}' not found.":  # the SDK's own answer
                print(f"  NOT OFFERED  {call_text(call.name, call.arguments)}: nothing ran")
                print(f"           the model sees: {item.output}")
            else:
                show_call(call.name, call.arguments, str(item.output))
    show_model(str(final))


if __name__ == "__main__":
    asyncio.run(main())
