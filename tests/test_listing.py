"""G2: tools a principal can never be permitted do not exist for it; listing is not permission."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy_strategies as gen
from support import session_with
from warded import Gate, ManualClock, MemoryStore, Principal, Refusal, Session
from warded.policy.engine import Engine

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KNOWN_PAYEE = "GB33BUKB20201555555555"
PAY = {"recipient": KNOWN_PAYEE, "amount": 42.5, "subject": "invoice 7"}


def generated_gate(policies: list[Any], executed: list[Any]) -> tuple[Gate, ManualClock]:
    clock = ManualClock(gen.MIDNIGHT)
    gate = Gate(gen.load(policies), store=MemoryStore(), clock=clock)
    gen.register_tools(gate, executed)
    return gate, clock


def listed(gate: Gate, principal: Principal) -> set[str]:
    return {spec.name for spec in gate.tools(principal)}


# -- listing over random policies --------------------------------------------------


@pytest.mark.requirement("G2")
@PROPERTY
@given(
    policies=gen.policy_lists(max_size=8),
    requests=st.lists(gen.requests(), min_size=1, max_size=10),
)
def test_a_listing_holds_every_tool_some_call_is_allowed_and_every_call_is_decided_anew(
    policies, requests
) -> None:
    executed: list[Any] = []
    gate, clock = generated_gate(policies, executed)
    engine = Engine(gate.bundle)
    for request in requests:
        allowed = engine.decide(
            request.principal, request.tool, request.resource(), request.context()
        ).allowed
        shown = request.tool in listed(gate, request.principal)
        if allowed:
            assert shown  # listing is sound: nothing callable is hidden
        clock.set(request.now)
        before = len(executed)
        answer = gate.call(request.principal, request.tool, request.args, request.session(gate))
        if allowed:
            assert answer == f"{request.tool} ran"
            assert len(executed) == before + 1
        else:
            assert isinstance(answer, Refusal)
            assert answer.code == ("not_permitted" if shown else "unknown_tool")
            assert len(executed) == before
            if not shown:
                never = gate.call(request.principal, "never_registered", {}, request.session(gate))
                assert shape(answer) == shape(never)


@pytest.mark.requirement("G2")
@PROPERTY
@given(
    policies=gen.policy_lists(max_size=8),
    principal=st.sampled_from(gen.PRINCIPALS),
    tool=st.sampled_from(gen.TOOLS),
    data=st.data(),
)
def test_a_tool_under_an_unconditional_forbid_for_the_principal_is_never_listed(
    policies, principal, tool, data
) -> None:
    groups = {"read_a": ["reads"], "read_b": ["reads"], "write_a": ["writes"]}
    groups["write_b"] = ["writes", "reads"]
    principal_scope = data.draw(
        st.sampled_from(
            [
                f"principal == {gen.uid(principal.type, principal.id)}",
                f"principal is {principal.type}",
                "principal",
            ]
        )
    )
    action_scope = data.draw(
        st.sampled_from(
            [f"action == {gen.uid('Action', tool)}", "action"]
            + [f"action in {gen.uid('Action', g)}" for g in groups.get(tool, [])]
        )
    )
    forbid = gen.Policy("forbid", principal_scope, action_scope)
    at = data.draw(st.integers(0, len(policies)))
    everything = gen.Policy("permit")  # so the forbid, not default deny, is what hides it
    gate, _ = generated_gate([*policies[:at], forbid, everything, *policies[at:]], [])
    assert tool not in listed(gate, principal)
    request = data.draw(gen.requests(principals=[principal], tools=[tool]))
    answer = gate.call(principal, tool, request.args, request.session(gate))
    assert isinstance(answer, Refusal)
    assert answer.code == "unknown_tool"


@pytest.mark.requirement("G2")
@PROPERTY
@given(
    policies=gen.policy_lists(max_size=8, effect="forbid"),
    others=st.lists(gen.policies(effect="permit"), max_size=4),
)
def test_a_principal_no_permit_can_match_is_listed_no_tools(policies, others) -> None:
    # Permits scoped to bob alone; alice (not in any group with bob) sees nothing.
    bobs = [
        gen.Policy("permit", 'principal == Agent::"bob"', p.action, p.resource, p.clauses)
        for p in others
    ]
    gate, _ = generated_gate([*policies, *bobs], [])
    assert listed(gate, Principal.agent("alice")) == set()
    assert listed(gate, gen.STRANGER) == set()


# -- hidden and nonexistent tools answer alike (banking example) ---------------------

REF = re.compile(r"^[0-9a-f]{16}$")
NEVER_REGISTERED = "transfer_funds"
LOOKALIKES: list[Any] = [
    "Send_Money",  # case variant
    "SEND_MONEY",
    "send_mоney",  # Cyrillic 'о'
    "get_bаlance",  # Cyrillic 'а': a look-alike of a tool both agents may use
    "send_money\x00",
    "send_money\x00get_balance",
    " send_money",
    "send_money ",
    "send-money",
    "send_money" * 1000,
    "",
    None,
    42,
    b"send_money",
    ("send_money",),
    ["send_money"],
    {"name": "send_money"},
]


def shape(answer: Any) -> str:
    """The model-facing bytes with the audit reference blanked out."""
    assert isinstance(answer, Refusal)
    assert REF.match(answer.ref)
    body = json.loads(answer.to_model())
    assert body.pop("ref") == answer.ref
    return json.dumps(body, sort_keys=True)


def model_bytes_without_ref(answer: Refusal) -> str:
    return answer.to_model().replace(answer.ref, "")


@pytest.mark.requirement("G2")
@pytest.mark.parametrize(
    ("agent", "hidden"),
    [
        ("support-bot", "send_money"),  # no permit
        ("support-bot", "read_document"),  # no permit
        ("support-bot", "update_password"),  # unconditional forbid
        ("billing-bot", "update_password"),  # unconditional forbid
    ],
)
def test_a_hidden_tool_answers_exactly_like_one_that_was_never_registered(
    gate: Gate, executed: list[Any], agent: str, hidden: str
) -> None:
    principal = Principal.agent(agent)
    assert hidden not in listed(gate, principal)
    args_seen = [
        {},
        PAY,
        {"password": "hunter2"},
        {"amount": "lots"},
        None,
        [1, 2],
        "send",
    ]
    for args in args_seen:
        hidden_answer = gate.call(principal, hidden, args, Session("s"))  # type: ignore[arg-type]
        unknown_answer = gate.call(principal, NEVER_REGISTERED, args, Session("s"))  # type: ignore[arg-type]
        assert shape(hidden_answer) == shape(unknown_answer)
        assert model_bytes_without_ref(hidden_answer) == model_bytes_without_ref(unknown_answer)
        assert hidden_answer.code == "unknown_tool"
        assert hidden_answer.ref != unknown_answer.ref
        dry_hidden = gate.decide(principal, hidden, args, Session("s"))  # type: ignore[arg-type]
        dry_unknown = gate.decide(principal, NEVER_REGISTERED, args, Session("s"))  # type: ignore[arg-type]
        assert dry_hidden == dry_unknown
    assert executed == []


@pytest.mark.requirement("G2")
@pytest.mark.parametrize("name", LOOKALIKES, ids=lambda n: repr(n)[:24])
@pytest.mark.parametrize("agent", ["billing-bot", "support-bot"])
def test_lookalike_and_malformed_tool_names_answer_like_a_tool_that_was_never_registered(
    gate: Gate, executed: list[Any], agent: str, name: Any
) -> None:
    principal = Principal.agent(agent)
    reference = gate.call(principal, NEVER_REGISTERED, PAY, Session("s"))
    answer = gate.call(principal, name, PAY, Session("s"))
    assert shape(answer) == shape(reference)
    assert model_bytes_without_ref(answer) == model_bytes_without_ref(reference)  # type: ignore[arg-type]
    assert gate.decide(principal, name, PAY, Session("s")) == gate.decide(
        principal, NEVER_REGISTERED, PAY, Session("s")
    )
    assert executed == []


@pytest.mark.requirement("G2")
def test_each_banking_agent_is_listed_exactly_the_tools_some_call_could_be_permitted(
    gate: Gate, billing: Principal, support: Principal
) -> None:
    assert listed(gate, billing) == {
        "send_money",
        "get_balance",
        "get_transactions",
        "read_document",
    }
    assert listed(gate, support) == {"get_balance", "get_transactions"}
    assert listed(gate, Principal.agent("nobody")) == set()


@pytest.mark.requirement("G2")
@pytest.mark.parametrize(
    ("args", "labels"),
    [
        ({**PAY, "amount": 10_000.0}, ()),  # over every permit's bound
        ({**PAY, "amount": -5.0}, ()),  # forbidden: not positive
        ({**PAY, "amount": 0.0}, ()),
        ({**PAY, "recipient": "DE00UNKNOWN000000000000"}, ()),  # not a known payee
        (PAY, ("untrusted",)),  # forbidden once untrusted content entered the session
    ],
)
def test_a_listed_tool_is_still_refused_for_arguments_policy_does_not_permit(
    gate: Gate, billing: Principal, executed: list[Any], args: dict[str, Any], labels: Any
) -> None:
    assert "send_money" in listed(gate, billing)
    answer = gate.call(billing, "send_money", args, session_with(gate, labels))
    assert isinstance(answer, Refusal)
    assert answer.code == "not_permitted"
    assert executed == []
    # ... and the same tool with permitted arguments runs: the refusal was about the call.
    assert gate.call(billing, "send_money", PAY, Session("s")) == {"status": "sent"}


PRINCIPAL_IDS = [
    "plain",
    'quote"inside',
    "back\\slash",
    "tab\there",
    "山田",
    "jose\u0301",
    "nul\x00inside",
    "control\x01char",
    "del\x7fchar",
    "no\u00a0break",
    "zero\u200bwidth",
    "zwj\u200djoin",
    "heart\u2764\ufe0f",
    "line\u2028separator",
]


@pytest.mark.requirement("G2")
@pytest.mark.parametrize("agent_id", PRINCIPAL_IDS, ids=ascii)
def test_a_principal_whose_id_needs_escaping_is_listed_the_tools_it_may_call(
    agent_id: str,
) -> None:
    executed: list[Any] = []
    gate, _ = generated_gate(
        [gen.Policy("permit", "principal is Agent", 'action == Action::"read_a"')], executed
    )
    principal = Principal.agent(agent_id)
    request = gen.Request(principal, "read_a", {"n": 1, "amount": 1.0, "who": "x"})
    decision = Engine(gate.bundle).decide(
        principal, "read_a", request.resource(), request.context()
    )
    assert decision.allowed
    assert listed(gate, principal) == {"read_a"}
    assert gate.call(principal, "read_a", request.args, request.session(gate)) == "read_a ran"
