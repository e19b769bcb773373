"""The OpenAI Agents SDK adapter, run by the SDK's Runner against replayed responses."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx2
import pytest
from agents import (
    Agent,
    OpenAIResponsesModel,
    RunConfig,
    RunHooks,
    Runner,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from adapters.wire import LARGE, PAY, Replay, is_refusal, response_body
from warded import Gate, Principal, Session
from warded.adapters.agents import function_tools
from warded.adapters.strict import strict_parameters
from warded.obligations.desk import approver_from_bundle

CONFIG = RunConfig(tracing_disabled=True, tool_not_found_behavior="return_error_to_model")


@pytest.fixture(autouse=True)
def _no_traces() -> None:
    set_tracing_disabled(True)


def run(gate: Gate, who: Principal, session: Session, *bodies: dict[str, Any]) -> Replay:
    """One Runner.run over the replayed bodies; the transport keeps what the SDK sent."""
    replay = Replay(*bodies)
    client = AsyncOpenAI(api_key="test", http_client=httpx2.AsyncClient(transport=replay))
    agent = Agent(
        name="billing-bot",
        model=OpenAIResponsesModel(model="m", openai_client=client),
        tools=function_tools(gate, who, session),
    )
    asyncio.run(Runner.run(agent, "go", run_config=CONFIG))
    return replay


def outputs(sent: dict[str, Any]) -> dict[str, str]:
    """The function call outputs in a request, by call id."""
    return {
        i["call_id"]: i["output"] for i in sent["input"] if i.get("type") == "function_call_output"
    }


def offered(sent: dict[str, Any]) -> list[str]:
    return [t["name"] for t in sent.get("tools", [])]


def test_function_tools_are_the_listed_tools_strict_where_their_schema_allows(
    gate: Gate, billing: Principal, session: Session
) -> None:
    tools = function_tools(gate, billing, session)
    specs = gate.tools(billing, session)
    assert [t.name for t in tools] == [s.name for s in specs]
    for t, s in zip(tools, specs, strict=True):
        assert (t.params_json_schema, t.strict_json_schema) == strict_parameters(s.parameters)
        assert t.description == s.description


def test_the_runner_runs_allowed_calls_and_the_model_sees_refusals(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    stranger = {**PAY, "recipient": "XX00ATTACKER0000000000"}
    replay = run(
        gate,
        billing,
        session,
        response_body(("call_1", "send_money", PAY), ("call_2", "send_money", stranger)),
        response_body(text="done"),
    )
    first, second = replay.sent
    assert offered(first) == [s.name for s in gate.tools(billing, session)]
    seen = outputs(second)
    assert json.loads(seen["call_1"]) == {"status": "sent", "amount": 42.5}
    assert is_refusal(seen["call_2"], "not_permitted")
    assert [name for name, _ in executed] == ["send_money"]


@pytest.mark.requirement("G9")
def test_the_sdks_tool_call_id_is_the_call_id(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    body = response_body(("call_1", "send_money", PAY))
    run(gate, billing, session, body, response_body(text="done"))
    replay = run(gate, billing, session, body, response_body(text="done"))
    assert is_refusal(outputs(replay.sent[1])["call_1"], "not_permitted")
    assert len(executed) == 1


def test_an_approved_call_runs_once_on_the_models_retry(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    replay = run(
        gate,
        billing,
        session,
        response_body(("call_1", "send_money", LARGE)),
        response_body(text="ok"),
    )
    held = json.loads(outputs(replay.sent[1])["call_1"])
    assert held["code"] == "approval_required"
    gate.approvals.approve(held["approval_id"], approver_from_bundle(gate.bundle, "alice"))
    replay = run(
        gate,
        billing,
        session,
        response_body(("call_2", "send_money", LARGE), ("call_3", "send_money", LARGE)),
        response_body(text="ok"),
    )
    # The SDK runs the two identical calls concurrently: exactly one uses the approval.
    answers = sorted(
        json.loads(text).get("code", "ran") for text in outputs(replay.sent[1]).values()
    )
    assert answers == ["approval_required", "ran"]
    assert len(executed) == 1


def test_untrusted_content_takes_payments_out_of_the_same_run(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    replay = run(
        gate,
        billing,
        session,
        response_body(("call_1", "read_document", {"path": "inbox/1"})),
        response_body(("call_2", "send_money", PAY)),
        response_body(text="done"),
    )
    assert "send_money" in offered(replay.sent[0])
    assert "send_money" not in offered(replay.sent[1])
    # The model calls it anyway: the SDK answers (it was not given the tool); nothing runs.
    assert outputs(replay.sent[2])["call_2"] == "Tool 'send_money' not found."
    assert [name for name, _ in executed] == ["read_document"]


def test_a_tool_the_gate_stops_listing_is_gone_from_the_next_request(
    gate: Gate, billing: Principal, session: Session, banking_dir: Path, tmp_path: Path
) -> None:
    """Each function tool is enabled only while the gate lists it (here: a reload revokes it)."""
    revoked = tmp_path / "policies"
    shutil.copytree(banking_dir, revoked)
    (revoked / "payments.cedar").unlink()
    tools = function_tools(gate, billing, session)
    replay = Replay(response_body(("call_1", "get_balance", {})), response_body(text="done"))
    client = AsyncOpenAI(api_key="test", http_client=httpx2.AsyncClient(transport=replay))
    agent = Agent(
        name="b", model=OpenAIResponsesModel(model="m", openai_client=client), tools=tools
    )

    class Revoke(RunHooks[Any]):
        async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: object) -> None:
            gate.reload(revoked)

    asyncio.run(Runner.run(agent, "go", run_config=CONFIG, hooks=Revoke()))
    assert "send_money" in offered(replay.sent[0])
    assert "send_money" not in offered(replay.sent[1])
    assert "get_balance" in offered(replay.sent[1])


@pytest.mark.requirement("G1")
def test_arguments_that_are_not_json_are_refused_and_the_run_goes_on(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    # (JSON nested deeper than Python's recursion limit is not among them: the SDK itself
    # parses the arguments before any tool sees them, and raises RecursionError)
    replay = run(
        gate,
        billing,
        session,
        response_body(
            ("call_1", "send_money", '{"recipient": "GB33'),
            ("call_2", "send_money", '["GB33", 1, "s"]'),
            ("call_3", "send_money", '{"recipient": "x", "amount": NaN, "subject": "s"}'),
        ),
        response_body(text="done"),
    )
    seen = outputs(replay.sent[1])
    assert [json.loads(seen[c])["code"] for c in ("call_1", "call_2", "call_3")] == [
        "invalid_arguments"
    ] * 3
    assert executed == []
