"""The Anthropic adapter with the SDK's own types, parsing and HTTP client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from anthropic import Anthropic
from anthropic.types import Message

from adapters.wire import LARGE, PAY, Replay, anthropic_body, is_refusal, without_ref
from warded import Gate, Principal, Session, ToolFailure
from warded.adapters.anthropic import AnthropicTools
from warded.obligations.desk import approver_from_bundle


def message(*calls: tuple[str, str, Any], text: str | None = None) -> Message:
    return Message.model_validate(anthropic_body(*calls, text=text))


def test_the_model_is_offered_exactly_the_tools_the_gate_lists(
    gate: Gate, billing: Principal, support: Principal, session: Session
) -> None:
    for who in (billing, support):
        offered = AnthropicTools(gate, who, session).tools()
        assert [(t["name"], t["description"], t["input_schema"]) for t in offered] == [
            (s.name, s.description, s.parameters) for s in gate.tools(who, session)
        ]


def test_tool_use_blocks_are_answered_with_tool_result_blocks_in_order(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    stranger = {**PAY, "recipient": "XX00ATTACKER0000000000"}
    results = AnthropicTools(gate, billing, session).handle(
        message(
            ("toolu_1", "send_money", PAY),
            ("toolu_2", "send_money", stranger),
            ("toolu_3", "get_balance", {}),
            text="Paying now.",
        )
    )
    assert [(r["tool_use_id"], r["is_error"]) for r in results] == [
        ("toolu_1", False),
        ("toolu_2", True),
        ("toolu_3", False),
    ]
    assert results[0]["content"] == '{"status":"sent","amount":42.5}'
    assert is_refusal(str(results[1]["content"]), "not_permitted")
    assert results[2]["content"] == "100.0"
    assert [name for name, _ in executed] == ["send_money", "get_balance"]


def test_a_tool_that_raised_is_an_error_result_with_the_failures_own_text(
    gate: Gate, billing: Principal, session: Session
) -> None:
    broken = Gate(gate.bundle)

    @broken.tool
    def get_balance() -> float:
        raise RuntimeError("ledger offline at 10.0.0.7")

    (failed,) = AnthropicTools(broken, billing, session).handle(
        message(("toolu_1", "get_balance", {}))
    )
    assert failed["is_error"] is True
    ref = json.loads(str(failed["content"]))["ref"]
    assert failed["content"] == ToolFailure(ref=ref).to_model()


@pytest.mark.requirement("G2")
def test_a_hidden_tool_and_a_tool_that_never_existed_get_the_same_tool_result(
    gate: Gate, support: Principal, session: Session, executed: list[Any]
) -> None:
    hidden, never = AnthropicTools(gate, support, session).handle(
        message(("toolu_1", "send_money", PAY), ("toolu_2", "wire_all_funds", PAY))
    )
    assert without_ref(str(hidden["content"])) == without_ref(str(never["content"]))
    assert hidden["is_error"] is never["is_error"] is True
    assert executed == []


@pytest.mark.requirement("G9")
def test_a_resent_tool_use_id_runs_at_most_once(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    tools = AnthropicTools(gate, billing, session)
    sent = message(("toolu_1", "send_money", PAY))
    assert tools.handle(sent)[0]["is_error"] is False
    assert is_refusal(str(tools.handle(sent)[0]["content"]), "not_permitted")
    assert len(executed) == 1


def test_an_approved_call_runs_once_and_untrusted_content_takes_payments_away(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    tools = AnthropicTools(gate, billing, session)
    (held,) = tools.handle(message(("toolu_1", "send_money", LARGE)))
    approval_id = json.loads(str(held["content"]))["approval_id"]
    gate.approvals.approve(approval_id, approver_from_bundle(gate.bundle, "alice"))
    ran, read, pay = tools.handle(
        message(
            ("toolu_2", "send_money", LARGE),
            ("toolu_3", "read_document", {"path": "inbox/1"}),
            ("toolu_4", "send_money", PAY),
        )
    )
    assert json.loads(str(ran["content"])) == {"status": "sent", "amount": 1200}
    assert read["is_error"] is False
    assert is_refusal(str(pay["content"]), "not_permitted", policy="session.untrusted-no-payments")
    assert [name for name, _ in executed] == ["send_money", "read_document"]
    assert "send_money" not in [t["name"] for t in tools.tools()]


def test_the_loop_hands_the_tool_results_back_through_the_sdk(
    gate: Gate, billing: Principal, session: Session
) -> None:
    tools = AnthropicTools(gate, billing, session)
    replay = Replay(
        anthropic_body(("toolu_1", "get_balance", {}), ("toolu_2", "wire_all_funds", {})),
        anthropic_body(text="done"),
    )
    client = Anthropic(api_key="test", http_client=httpx2.Client(transport=replay))
    messages: list[Any] = [{"role": "user", "content": "balance?"}]
    first = client.messages.create(
        model="m", max_tokens=100, messages=messages, tools=tools.tools()
    )
    messages += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": tools.handle(first)},
    ]
    client.messages.create(model="m", max_tokens=100, messages=messages, tools=tools.tools())
    assert [t["name"] for t in replay.sent[0]["tools"]] == [
        s.name for s in gate.tools(billing, session)
    ]
    balance, unknown = replay.sent[1]["messages"][-1]["content"]
    assert balance == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "100.0",
        "is_error": False,
    }
    assert unknown["is_error"] is True
    assert is_refusal(unknown["content"], "unknown_tool")


def test_the_async_handler_answers_as_the_sync_one(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    tools = AnthropicTools(gate, billing, session)
    (result,) = asyncio.run(tools.ahandle(message(("toolu_1", "send_money", PAY))))
    assert result == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": '{"status":"sent","amount":42.5}',
        "is_error": False,
    }
    assert len(executed) == 1
