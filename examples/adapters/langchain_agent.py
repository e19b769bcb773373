"""A LangChain agent loop whose tool calls all go through warded.

Offline: ChatOpenAI's client talks to recorded responses (see replay.py).

    pip install -e '.[langchain]' && python examples/adapters/langchain_agent.py
"""

from __future__ import annotations

import httpx2
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
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
from warded.adapters.langchain import LangChainTools


def run_turn(model: ChatOpenAI, tools: LangChainTools, messages: list[BaseMessage]) -> None:
    """The model's turn: call it until it answers without tool calls."""
    while True:
        bound = model.bind_tools(tools.tools())  # warded: only the tools this session may use
        ai = bound.invoke(messages)
        assert isinstance(ai, AIMessage)
        messages.append(ai)
        if not ai.tool_calls:
            show_model(ai.text)
            return
        results = tools.handle(ai)  # warded: every call through the gate
        messages.extend(results)
        for call, result in zip(ai.tool_calls, results, strict=True):
            show_call(call["name"], call["args"], result.text)


def main() -> None:
    bank = Bank()
    gate = build_gate(bank)
    tools = LangChainTools(gate, AGENT, Session("langchain-demo"))  # warded
    model = ChatOpenAI(
        model="gpt-5.4-mini",
        api_key="offline",
        http_client=httpx2.Client(transport=Replay("openai_chat")),
    )
    messages: list[BaseMessage] = [SystemMessage(SYSTEM), HumanMessage(ASK)]
    run_turn(model, tools, messages)
    approve_pending(gate)
    messages.append(HumanMessage(APPROVED))
    run_turn(model, tools, messages)
    summary(gate, bank)


if __name__ == "__main__":
    main()
