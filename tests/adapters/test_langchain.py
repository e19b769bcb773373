"""The LangChain adapter with langchain-core's tools and messages, and ChatOpenAI's parsing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import httpx2
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from adapters.wire import KNOWN, PAY, Replay, chat_body, is_refusal, without_ref
from warded import Gate, MemoryStore, Principal, Refusal, Session, ToolDefinitionError
from warded.adapters.langchain import LangChainTools, register


def tool_call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "args": args}


def by_name(tools: list[BaseTool]) -> dict[str, BaseTool]:
    return {t.name: t for t in tools}


def test_the_tools_are_langchain_tools_showing_the_model_the_gates_schema(
    gate: Gate, billing: Principal, support: Principal, session: Session
) -> None:
    for who in (billing, support):
        tools = LangChainTools(gate, who, session).tools()
        assert all(isinstance(t, BaseTool) for t in tools)
        assert [convert_to_openai_tool(t)["function"] for t in tools] == [
            {"name": s.name, "description": s.description, "parameters": s.parameters}
            for s in gate.tools(who, session)
        ]


def test_a_tool_invoked_with_a_tool_call_answers_with_a_tool_message(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    send = by_name(LangChainTools(gate, billing, session).tools())["send_money"]
    ran = send.invoke(tool_call("call_1", "send_money", PAY))
    refused = send.invoke(tool_call("call_2", "send_money", {**PAY, "recipient": "XX00"}))
    assert isinstance(ran, ToolMessage)
    assert (ran.tool_call_id, ran.status, ran.content) == (
        "call_1",
        "success",
        '{"status":"sent","amount":42.5}',
    )
    assert ran.artifact == {"status": "sent", "amount": 42.5}
    assert isinstance(refused, ToolMessage)
    assert refused.status == "error"
    assert isinstance(refused.artifact, Refusal)
    assert refused.content == refused.artifact.to_model()
    assert len(executed) == 1


def test_a_tool_invoked_with_arguments_returns_the_text_the_model_would_see(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    tools = by_name(LangChainTools(gate, billing, session).tools())
    assert tools["get_balance"].invoke({}) == "100.0"
    assert is_refusal(tools["send_money"].invoke({**PAY, "amount": "lots"}), "invalid_arguments",
                      detail="amount: violates 'type'")  # fmt: skip
    assert asyncio.run(tools["send_money"].ainvoke(PAY)) == '{"status":"sent","amount":42.5}'
    assert [name for name, _ in executed] == ["get_balance", "send_money"]


@pytest.mark.requirement("G9")
def test_a_resent_tool_call_id_runs_at_most_once(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    send = by_name(LangChainTools(gate, billing, session).tools())["send_money"]
    send.invoke(tool_call("call_1", "send_money", PAY))
    again = asyncio.run(send.ainvoke(tool_call("call_1", "send_money", PAY)))
    assert isinstance(again, ToolMessage)
    assert is_refusal(again.text, "not_permitted")
    assert len(executed) == 1


@pytest.mark.requirement("G2")
def test_handle_answers_every_call_of_a_message_even_to_names_never_offered(
    gate: Gate, support: Principal, session: Session, executed: list[Any]
) -> None:
    ai = AIMessage(
        content="",
        tool_calls=[tool_call("c1", "get_balance", {}), tool_call("c2", "send_money", PAY)],
        invalid_tool_calls=[
            {"type": "invalid_tool_call", "id": "c3", "name": "wire_all_funds", "args": "{",
             "error": "bad json"},
        ],
    )  # fmt: skip
    balance, hidden, never = LangChainTools(gate, support, session).handle(ai)
    assert [(m.tool_call_id, m.name, m.status) for m in (balance, hidden, never)] == [
        ("c1", "get_balance", "success"),
        ("c2", "send_money", "error"),
        ("c3", "wire_all_funds", "error"),
    ]
    assert without_ref(hidden.text) == without_ref(never.text)
    assert is_refusal(hidden.text, "unknown_tool")
    assert executed == [("get_balance", {})]


def test_arguments_langchain_could_not_parse_are_refused_by_the_gate(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    ai = AIMessage(
        content="",
        invalid_tool_calls=[
            {"type": "invalid_tool_call", "id": "c1", "name": "send_money", "args": '{"amount": ',
             "error": "bad json"},
        ],
    )  # fmt: skip
    (refused,) = asyncio.run(LangChainTools(gate, billing, session).ahandle(ai))
    assert json.loads(refused.text)["code"] == "invalid_arguments"
    assert executed == []


def test_untrusted_content_takes_payments_away_for_the_rest_of_the_session(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    tools = LangChainTools(gate, billing, session)
    ai = AIMessage(
        content="",
        tool_calls=[
            tool_call("c1", "read_document", {"path": "a"}),
            tool_call("c2", "send_money", PAY),
        ],
    )
    assert "send_money" in by_name(tools.tools())
    _, pay = tools.handle(ai)
    assert is_refusal(pay.text, "not_permitted", policy="session.untrusted-no-payments")
    assert [name for name, _ in executed] == ["read_document"]
    assert "send_money" not in by_name(tools.tools())


def test_a_chat_model_loop_through_chatopenai(
    gate: Gate, billing: Principal, session: Session
) -> None:
    """The model's tool calls parsed by langchain-openai, answered, and sent back."""
    tools = LangChainTools(gate, billing, session)
    replay = Replay(
        chat_body(("call_1", "get_balance", {}), ("call_2", "send_money", "{broken")),
        chat_body(text="done"),
    )
    model = ChatOpenAI(model="m", api_key="test", http_client=httpx2.Client(transport=replay))
    messages: list[Any] = [HumanMessage("balance?")]
    ai = model.bind_tools(tools.tools()).invoke(messages)
    assert isinstance(ai, AIMessage)
    messages += [ai, *tools.handle(ai)]
    model.bind_tools(tools.tools()).invoke(messages)
    offered = [t["function"] for t in replay.sent[0]["tools"]]
    assert offered == [
        {"name": s.name, "description": s.description, "parameters": s.parameters}
        for s in gate.tools(billing, session)
    ]
    balance, broken = replay.sent[1]["messages"][-2:]
    assert balance == {"role": "tool", "tool_call_id": "call_1", "content": "100.0"}
    assert broken["tool_call_id"] == "call_2"
    assert json.loads(broken["content"])["code"] == "invalid_arguments"


# -- existing LangChain tools behind the gate ------------------------------------


@pytest.fixture
def bare(banking_dir: Any) -> Gate:
    """A gate over the banking bundle with no tools registered yet."""
    return Gate.from_directory(banking_dir, store=MemoryStore())


def test_an_existing_langchain_tool_runs_only_when_the_gate_allows_it(
    bare: Gate, billing: Principal, support: Principal, session: Session
) -> None:
    sent: list[tuple[str, float]] = []

    @tool
    def send_money(recipient: str, amount: float, subject: str) -> str:
        """Send money to a recipient IBAN."""
        sent.append((recipient, amount))
        return f"sent {amount}"

    register(bare, send_money, effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    assert [s.name for s in bare.tools(billing, session)] == ["send_money"]
    assert bare.tools(support, session) == []
    (spec,) = bare.tools(billing, session)
    assert spec.parameters == convert_to_openai_tool(send_money)["function"]["parameters"]
    assert spec.description == "Send money to a recipient IBAN."
    assert bare.call(billing, "send_money", PAY, session) == "sent 42.5"
    refused = bare.call(billing, "send_money", {**PAY, "amount": 1200}, session)
    assert isinstance(refused, Refusal)
    assert refused.code == "approval_required"
    assert isinstance(bare.call(support, "send_money", PAY, session), Refusal)
    assert sent == [(KNOWN, 42.5)]


def test_a_wrapped_tool_is_offered_again_as_a_gate_tool(
    bare: Gate, billing: Principal, session: Session
) -> None:
    @tool
    def get_balance() -> float:
        """The account balance."""
        return 7.5

    register(bare, get_balance)
    (offered,) = LangChainTools(bare, billing, session).tools()
    message = offered.invoke(tool_call("call_1", "get_balance", {}))
    assert isinstance(message, ToolMessage)
    assert (message.text, message.status) == ("7.5", "success")


def test_an_async_only_langchain_tool_is_awaited_behind_the_gate(
    bare: Gate, billing: Principal, session: Session
) -> None:
    async def balance() -> float:
        return 9.0

    get_balance = StructuredTool.from_function(
        coroutine=balance, name="get_balance", description="The account balance."
    )
    register(bare, get_balance)
    assert asyncio.run(bare.acall(billing, "get_balance", {}, session)) == 9.0
    assert bare.call(billing, "get_balance", {}, session) == 9.0


def test_a_langchain_tool_with_injected_arguments_is_refused_at_registration(
    bare: Gate,
) -> None:
    @tool
    def get_balance(call: Annotated[str, InjectedToolCallId]) -> float:
        """The account balance."""
        return 1.0

    with pytest.raises(ToolDefinitionError, match="injected arguments"):
        register(bare, get_balance)
    assert bare.tools(Principal.agent("billing-bot"), Session("s")) == []


PAY_SCHEMA = """
type Session = { id: String, labels: Set<String>, calls: Long };
type Now = { epoch: Long, hour: Long, weekday: Long };
entity Agent;
entity Tool;
action pay appliesTo { principal: [Agent], resource: [Tool],
  context: { args: { recipient: String, amount?: decimal, tags?: Set<String> },
             session: Session, now: Now } };
"""
PAY_POLICY = """
@id("pay")
permit (principal == Agent::"billing-bot", action == Action::"pay", resource);

@id("pay.small")
forbid (principal, action == Action::"pay", resource)
when { context.args has amount && context.args.amount.greaterThan(decimal("1000.0")) };
"""


@pytest.fixture
def payer(tmp_path: Path) -> Gate:
    """A gate whose one action, `pay`, forbids an amount over 1000 (an optional argument)."""
    (tmp_path / "schema.cedarschema").write_text(PAY_SCHEMA)
    (tmp_path / "pay.cedar").write_text(PAY_POLICY)
    (tmp_path / "entities.json").write_text(
        '[{"uid": {"type": "Agent", "id": "billing-bot"}, "attrs": {}, "parents": []}]'
    )
    return Gate.from_directory(tmp_path, store=MemoryStore())


@pytest.mark.requirement("G7")
def test_a_langchain_tool_whose_default_the_gate_cannot_see_is_refused_at_registration(
    payer: Gate, billing: Principal, session: Session
) -> None:
    # LangChain fills a default_factory after the gate decided: the policy would never
    # see the amount that is paid
    paid: list[float] = []

    class Payment(BaseModel):
        recipient: str
        amount: float = Field(default_factory=lambda: 5000.0)

    @tool(args_schema=Payment)
    def pay(recipient: str, amount: float) -> str:
        """Pay a recipient."""
        paid.append(amount)
        return f"paid {amount}"

    with pytest.raises(ToolDefinitionError, match="amount"):
        register(payer, pay, effect="irreversible")
    assert isinstance(payer.call(billing, "pay", {"recipient": KNOWN}, session), Refusal)
    assert paid == []


@pytest.mark.requirement("G7")
def test_an_empty_container_default_is_shown_to_the_policy_and_is_what_the_tool_gets(
    payer: Gate, billing: Principal, session: Session
) -> None:
    got: list[list[str]] = []

    class Payment(BaseModel):
        recipient: str
        tags: list[str] = Field(default_factory=list)

    @tool(args_schema=Payment)
    def pay(recipient: str, tags: list[str]) -> str:
        """Pay a recipient."""
        got.append(tags)
        return "paid"

    register(payer, pay, effect="irreversible")
    (spec,) = payer.tools(billing, session)
    assert spec.parameters["properties"]["tags"]["default"] == []
    assert payer.call(billing, "pay", {"recipient": KNOWN}, session) == "paid"
    assert got == [[]]


@pytest.mark.requirement("G7")
def test_a_langchain_default_below_the_top_level_is_never_filled_behind_the_policys_back(
    tmp_path: Path, billing: Principal, session: Session
) -> None:
    """LangChain validates the arguments with the tool's model when it runs it, filling
    the defaults of a nested model: a plain one the schema shows, a factory's it does
    not. Left out, either is invalid_arguments naming it; sent, the policy decides."""
    paid: list[Any] = []

    class Line(BaseModel):
        recipient: str
        amount: float = 5000.0

    class Extra(BaseModel):
        recipient: str
        amount: float = Field(default_factory=lambda: 5000.0)

    class Payment(BaseModel):
        line: Line | None = None
        extra: list[Extra] = []

    @tool(args_schema=Payment)
    def pay(line: Line | None, extra: list[Extra]) -> str:
        """Pay a recipient."""
        paid.extend([line, *extra])
        return "paid"

    line = "{ recipient: String, amount?: decimal }"
    (tmp_path / "schema.cedarschema").write_text(
        PAY_SCHEMA.replace(
            "{ recipient: String, amount?: decimal, tags?: Set<String> }",
            f"{{ line?: {line}, extra?: Set<{line}> }}",
        )
    )
    (tmp_path / "pay.cedar").write_text(
        PAY_POLICY.replace(
            "context.args has amount", "context.args has line && context.args.line has amount"
        ).replace("context.args.amount", "context.args.line.amount")
    )
    (tmp_path / "entities.json").write_text(
        '[{"uid": {"type": "Agent", "id": "billing-bot"}, "attrs": {}, "parents": []}]'
    )
    payer = Gate.from_directory(tmp_path, store=MemoryStore())
    register(payer, pay, effect="irreversible")
    over = {"line": {"recipient": KNOWN, "amount": 5000.0}}
    assert isinstance(payer.call(billing, "pay", over, session), Refusal)  # the policy's cap
    for args, missing in (
        ({"line": {"recipient": KNOWN}}, "line/amount"),
        ({"extra": [{"recipient": KNOWN, "amount": 5}, {"recipient": KNOWN}]}, "extra/1/amount"),
    ):
        refused = payer.call(billing, "pay", args, session)
        assert isinstance(refused, Refusal)
        assert (refused.code, refused.detail) == (
            "invalid_arguments",
            f"{missing}: missing (its default is not sent)",
        )
    assert paid == []
    sent = {"line": {"recipient": KNOWN, "amount": 5}, "extra": [{"recipient": KNOWN, "amount": 6}]}
    assert payer.call(billing, "pay", sent, session) == "paid"
    assert paid == [Line(recipient=KNOWN, amount=5), Extra(recipient=KNOWN, amount=6)]


def test_a_langchain_tool_whose_arguments_are_a_pydantic_v1_model_is_refused(bare: Gate) -> None:
    # the gate checks a call's defaults with the model's pydantic 2 validation
    from pydantic.v1 import BaseModel as V1Model

    class Payment(V1Model):
        recipient: str

    pay = StructuredTool.from_function(
        lambda recipient: "paid", name="pay", description="Pay.", args_schema=Payment
    )
    with pytest.raises(ToolDefinitionError, match="pydantic v1"):
        register(bare, pay)
