"""Framework adapters: what each adds to a tool call and to a tool listing.

Run from the repository root (with the adapter extras installed):

    .venv/bin/python benchmarks/adapters.py            # ~1 minute
    .venv/bin/python benchmarks/adapters.py --quick    # a fast smoke run

On the banking bundle (in-memory store, no-op tools), one read call with an
argument (`get_transactions`, each with a fresh tool-call id) is made

- directly with `gate.call` (the floor every adapter stands on),
- through `OpenAITools.handle_chat` (the model's message parsed once, outside
  the timing), `AnthropicTools.handle`, `LangChainTools.handle`,
- through a LangChain tool's `invoke(tool_call)` (LangChain's run machinery:
  callbacks, the ToolMessage), and an Agents SDK function tool's
  `on_invoke_tool` (awaited on one event loop; `gate.acall` is measured too);
- directly with `gate.call` again, last in each round, as a control for order.

Listing: `gate.tools` beside `chat_tools()` (the strict-mode check on every
tool) and LangChain's `tools()` (building BaseTools). Variants are
interleaved in rounds; the table gives the median wall µs per operation, CPU
µs per operation and both ratios to the direct gate call (or `gate.tools`);
on a shared machine the CPU ratio is the steadier one.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from agents.tool_context import ToolContext
from anthropic.types import Message
from langchain_core.messages import AIMessage
from openai.types.chat import ChatCompletion

from warded import Gate, MemoryStore, Principal, Session
from warded.adapters.agents import function_tools
from warded.adapters.anthropic import AnthropicTools
from warded.adapters.langchain import LangChainTools
from warded.adapters.openai import OpenAITools

ROOT = Path(__file__).resolve().parent.parent
AGENT = Principal.agent("billing-bot")
ARGS = {"limit": 3}
ids = itertools.count()


def build() -> Gate:
    gate = Gate.from_directory(ROOT / "examples" / "banking" / "policies", store=MemoryStore())

    @gate.tool
    def get_transactions(limit: int = 10) -> list[int]:
        """Recent transactions."""
        return list(range(limit))

    for name in ("send_money", "get_balance", "read_document", "update_password"):
        gate.register(name, {"type": "object"}, lambda **_: None)
    return gate


def chat_message() -> Any:
    call = {"id": f"call_{next(ids)}", "type": "function",
            "function": {"name": "get_transactions", "arguments": '{"limit": 3}'}}  # fmt: skip
    body = {
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
    }  # fmt: skip
    return ChatCompletion.model_validate(body).choices[0].message


def anthropic_message() -> Message:
    return Message.model_validate(
        {"id": "m", "type": "message", "role": "assistant", "model": "m",
         "content": [{"type": "tool_use", "id": f"toolu_{next(ids)}", "name": "get_transactions",
                      "input": ARGS}],
         "stop_reason": "tool_use", "stop_sequence": None,
         "usage": {"input_tokens": 1, "output_tokens": 1}}
    )  # fmt: skip


def tool_call() -> dict[str, Any]:
    return {"type": "tool_call", "id": f"call_{next(ids)}", "name": "get_transactions",
            "args": ARGS}  # fmt: skip


def variants(
    gate: Gate, loop: asyncio.AbstractEventLoop
) -> dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]]:
    """name -> (prepare an input outside the timing, the timed operation)."""
    session = Session("bench")
    openai_tools = OpenAITools(gate, AGENT, session)
    anthropic_tools = AnthropicTools(gate, AGENT, session)
    lc = LangChainTools(gate, AGENT, session)
    lc_tool = next(t for t in lc.tools() if t.name == "get_transactions")
    fn = next(t for t in function_tools(gate, AGENT, session) if t.name == "get_transactions")

    def agents_call(_: Any) -> Any:
        i = f"call_{next(ids)}"
        context = ToolContext(
            None, tool_name=fn.name, tool_call_id=i, tool_arguments='{"limit": 3}'
        )
        return loop.run_until_complete(fn.on_invoke_tool(context, '{"limit": 3}'))

    return {
        "gate.call": (lambda: f"call_{next(ids)}",
                      lambda i: gate.call(AGENT, "get_transactions", ARGS, session, call_id=i)),
        "gate.acall": (lambda: f"call_{next(ids)}", lambda i: loop.run_until_complete(
            gate.acall(AGENT, "get_transactions", ARGS, session, call_id=i))),
        "openai handle_chat": (chat_message, openai_tools.handle_chat),
        "anthropic handle": (anthropic_message, anthropic_tools.handle),
        "langchain handle": (
            lambda: AIMessage(content="", tool_calls=[tool_call()]), lc.handle),  # type: ignore[list-item]
        "langchain tool.invoke": (tool_call, lc_tool.invoke),
        "agents on_invoke_tool": (lambda: None, agents_call),
        "gate.call (again, last)": (lambda: f"call_{next(ids)}",
                      lambda i: gate.call(AGENT, "get_transactions", ARGS, session, call_id=i)),
    }  # fmt: skip


def listings(gate: Gate) -> dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]]:
    session = Session("bench-list")
    openai_tools = OpenAITools(gate, AGENT, session)
    anthropic_tools = AnthropicTools(gate, AGENT, session)
    lc = LangChainTools(gate, AGENT, session)
    return {
        "gate.tools": (lambda: None, lambda _: gate.tools(AGENT, session)),
        "openai chat_tools": (lambda: None, lambda _: openai_tools.chat_tools()),
        "anthropic tools": (lambda: None, lambda _: anthropic_tools.tools()),
        "langchain tools": (lambda: None, lambda _: lc.tools()),
    }


def measure(table: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]], rounds: int,
            per_round: int) -> dict[str, tuple[float, float]]:  # fmt: skip
    """name -> (median wall µs, median CPU µs) per operation, over interleaved rounds."""
    wall: dict[str, list[float]] = {k: [] for k in table}
    cpu: dict[str, list[float]] = {k: [] for k in table}
    for _ in range(rounds):
        for name, (prepare, run) in table.items():
            inputs = [prepare() for _ in range(per_round)]
            w, c = time.perf_counter(), time.process_time()
            for x in inputs:
                run(x)
            wall[name].append((time.perf_counter() - w) / per_round * 1e6)
            cpu[name].append((time.process_time() - c) / per_round * 1e6)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in table}


def show(title: str, results: dict[str, tuple[float, float]]) -> None:
    wall, cpu = next(iter(results.values()))
    print(f"\n{title:<24} {'median µs':>10} {'CPU µs':>9} {'wall ratio':>11} {'CPU ratio':>10}")
    for name, (w, c) in results.items():
        print(f"{name:<24} {w:>10.1f} {c:>9.1f} {w / wall:>10.2f}x {c / cpu:>9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    rounds, per_round = (3, 20) if quick else (15, 100)
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("openai", "anthropic", "langchain-core", "openai-agents", "cedarpy")
    )
    print(f"Python {sys.version.split()[0]}; {versions}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    gate = build()
    loop = asyncio.new_event_loop()
    show("one call", measure(variants(gate, loop), rounds, per_round))
    listed = len(gate.tools(AGENT, Session("count")))
    show(f"one listing ({listed} tools)", measure(listings(gate), rounds, per_round))
    loop.close()
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
