"""Cedar semantics (G4) and determinism (G3) as properties over random policy sets."""

from __future__ import annotations

from dataclasses import replace

import cedarpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy_strategies as gen
from warded import (
    BundleError,
    BundleFiles,
    Gate,
    ManualClock,
    MemoryStore,
    PolicyBundle,
    Refusal,
    Session,
)
from warded.policy.engine import Engine

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REQUESTS = st.lists(gen.requests(), min_size=1, max_size=8)


def decide(engine: Engine, request):  # type: ignore[no-untyped-def]
    return engine.decide(request.principal, request.tool, request.resource(), request.context())


def matching_forbid(request, data: st.DataObject):  # type: ignore[no-untyped-def]
    """An unconditional forbid whose scope matches `request`, in one of several forms."""
    p = request.principal
    principal_scopes = [
        "principal",
        f"principal == {gen.uid(p.type, p.id)}",
        f"principal is {p.type}",
    ]
    for e in gen.ENTITIES:
        if e["uid"] == p.uid():
            groups = {q["id"] for q in e["parents"]}
            while groups:  # every ancestor group, through nesting
                g = groups.pop()
                principal_scopes.append(f"principal in {gen.uid('Group', g)}")
                for parent in gen.ENTITIES:
                    if parent["uid"] == {"type": "Group", "id": g}:
                        groups |= {q["id"] for q in parent["parents"]}
    tool = request.tool
    groups = {"read_a": ["reads"], "read_b": ["reads"], "write_a": ["writes"]}
    groups["write_b"] = ["writes", "reads"]
    action_scopes = [
        "action",
        f"action == {gen.uid('Action', tool)}",
        f"action in [{gen.uid('Action', 'admin')}, {gen.uid('Action', tool)}]",
    ]
    for g in groups.get(tool, []):
        action_scopes += [f"action in {gen.uid('Action', g)}", 'action in Action::"everything"']
    return gen.Policy(
        "forbid",
        data.draw(st.sampled_from(principal_scopes)),
        data.draw(st.sampled_from(action_scopes)),
    )


# -- G4: Cedar semantics --------------------------------------------------------


@pytest.mark.requirement("G4")
@PROPERTY
@given(forbids=gen.policy_lists(max_size=6, effect="forbid"), requests=REQUESTS)
def test_a_policy_set_without_a_permit_allows_nothing(forbids, requests) -> None:
    engine = Engine(gen.load(forbids))
    for request in requests:
        assert not decide(engine, request).allowed


@pytest.mark.requirement("G4")
@PROPERTY
@given(
    policies=gen.policy_lists(max_size=8),
    request=gen.requests(),
    at=st.integers(0, 8),
    data=st.data(),
)
def test_a_matching_unconditional_forbid_denies_whatever_is_permitted(
    policies, request, at, data
) -> None:
    # Make the request allowed without the forbid, so the forbid has something to override.
    permit = gen.Policy("permit")
    forbid = matching_forbid(request, data)
    before = [*policies, permit]
    after = [*before]
    after.insert(min(at, len(after)), forbid)
    ids = [f"p{k}" for k in range(len(after))]
    ids[after.index(forbid)] = "the-forbid"
    decision = decide(Engine(gen.load(after, ids=ids)), request)
    assert not decision.allowed
    assert "the-forbid" in decision.policies


@pytest.mark.requirement("G4")
@PROPERTY
@given(
    policies=gen.policy_lists(max_size=8),
    extra=gen.policies(effect="permit", safe=True),
    requests=REQUESTS,
)
def test_adding_a_permit_never_revokes_an_allow(policies, extra, requests) -> None:
    # The added permit's conditions never error: an erroring permit is a deny by G4's
    # "any evaluation error is a deny" (see the test after this one).
    before = Engine(gen.load(policies))
    after = Engine(gen.load([*policies, extra]))
    for request in requests:
        if decide(before, request).allowed:
            assert decide(after, request).allowed


@pytest.mark.requirement("G4")
def test_an_added_permit_whose_condition_errors_turns_an_allow_into_a_deny() -> None:
    request = gen.Request(gen.KNOWN[0], "read_a", {"n": gen.OVERFLOW_N, "amount": 1.0, "who": "x"})
    base = [gen.Policy("permit")]
    erroring = gen.Policy("permit", clauses=(f"when {{ {gen.OVERFLOWING} }}",))
    assert decide(Engine(gen.load(base)), request).allowed
    decision = decide(Engine(gen.load([*base, erroring])), request)
    assert not decision.allowed
    assert decision.errors


@pytest.mark.requirement("G4")
def test_a_forbid_whose_condition_overflows_does_not_let_the_call_through() -> None:
    policies = [
        gen.Policy("permit"),
        gen.Policy("forbid", clauses=(f"when {{ {gen.OVERFLOWING} }}",)),
    ]
    bundle = gen.load(policies)
    request = gen.Request(gen.KNOWN[0], "read_a", {"n": gen.OVERFLOW_N, "amount": 1.0, "who": "x"})
    # Cedar alone skips the erroring forbid and says Allow ...
    alone = cedarpy.is_authorized(
        request.cedar(), bundle.policy_set, bundle.entities, bundle.schema
    )
    assert alone.decision == cedarpy.Decision.Allow
    assert alone.diagnostics.errors
    # ... warded denies, and through the gate the tool does not run.
    assert not decide(Engine(bundle), request).allowed
    executed: list[tuple[str, dict]] = []
    gate = Gate(bundle, store=MemoryStore(), clock=ManualClock(request.now))
    gen.register_tools(gate, executed)
    answer = gate.call(request.principal, request.tool, request.args, request.session(gate))
    assert isinstance(answer, Refusal)
    assert answer.code == "not_permitted"
    assert answer.policy is None  # an error, not a policy, decided it
    assert executed == []


@pytest.mark.requirement("G4")
@PROPERTY
@given(policies=gen.policy_lists(max_size=8), request=gen.requests(), data=st.data())
def test_a_matching_forbid_that_errors_never_lets_a_call_through(policies, request, data) -> None:
    forbid = matching_forbid(request, data)
    forbid = replace(forbid, clauses=(f"when {{ {gen.OVERFLOWING} }}",))
    request = replace(request, args={**request.args, "n": gen.OVERFLOW_N})
    bundle = gen.load([*policies, gen.Policy("permit"), forbid])
    assert not decide(Engine(bundle), request).allowed


@pytest.mark.requirement("G4")
def test_a_forbid_on_an_optional_argument_without_a_has_guard_is_rejected_at_load() -> None:
    # `note` is optional: unguarded, the forbid would error (and be skipped) when it is absent.
    policies = [
        gen.Policy("permit"),
        gen.Policy("forbid", clauses=('when { context.args.note == "x" }',)),
    ]
    with pytest.raises(BundleError) as caught:
        gen.load(policies)
    assert {(p.file, p.line) for p in caught.value.problems} == {("a.cedar", 8)}


# -- G3: deterministic ----------------------------------------------------------


@pytest.mark.requirement("G3")
@PROPERTY
@given(policies=gen.policy_lists(max_size=8), requests=REQUESTS)
def test_the_same_request_decided_twice_gets_the_same_decision(policies, requests) -> None:
    first, second = Engine(gen.load(policies)), Engine(gen.load(policies))
    for request in requests:
        once = decide(first, request)
        assert decide(first, request) == once
        assert decide(second, request) == once


@pytest.mark.requirement("G3")
@PROPERTY
@given(policies=gen.policy_lists(min_size=1, max_size=8), requests=REQUESTS, data=st.data())
def test_policy_order_and_file_layout_do_not_change_decisions(policies, requests, data) -> None:
    ids = [f"p{k}" for k in range(len(policies))]
    order = data.draw(st.permutations(range(len(policies))))
    split = data.draw(st.integers(0, len(policies)))
    original = Engine(gen.load(policies, ids=ids))
    shuffled = Engine(
        gen.load([policies[k] for k in order], ids=[ids[k] for k in order], split=split)
    )
    for request in requests:
        a, b = decide(original, request), decide(shuffled, request)
        assert (a.allowed, set(a.policies), set(a.errors)) == (
            b.allowed,
            set(b.policies),
            set(b.errors),
        )


@pytest.mark.requirement("G3")
@PROPERTY
@given(policies=gen.policy_lists(min_size=1, max_size=6), requests=REQUESTS, data=st.data())
def test_duplicated_policies_do_not_change_decisions(policies, requests, data) -> None:
    dups = data.draw(st.lists(st.integers(0, len(policies) - 1), min_size=1, max_size=4))
    ids = [f"p{k}" for k in range(len(policies))] + [f"dup{j}-of-p{k}" for j, k in enumerate(dups)]
    original = Engine(gen.load(policies))
    doubled = Engine(gen.load([*policies, *(policies[k] for k in dups)], ids=ids))
    for request in requests:
        a, b = decide(original, request), decide(doubled, request)
        assert a.allowed == b.allowed
        assert set(a.policies) == {p.split("-of-")[-1] for p in b.policies}
        assert bool(a.errors) == bool(b.errors)


@pytest.mark.requirement("G3")
def test_a_denied_call_cites_the_same_policy_every_time() -> None:
    # Two forbids determine the denial; which one the refusal (and the audit record)
    # names must not depend on anything but the inputs.
    policies = [
        gen.Policy("permit"),
        gen.Policy("forbid", clauses=("when { context.session.calls >= 0 }",)),
        gen.Policy("forbid", clauses=("when { context.now.hour >= 0 }",)),
    ]
    store = MemoryStore()
    gate = Gate(gen.load(policies), store=store, clock=ManualClock(gen.MIDNIGHT))
    gen.register_tools(gate, [])
    args = {"n": 1, "amount": 1.0, "who": "x"}
    answers = [gate.call(gen.KNOWN[0], "read_a", args, Session("s")) for _ in range(40)]
    cited = {(a.code, a.policy) for a in answers}
    recorded = {tuple(r.body["policies"]) for r in store.records() if r.body["kind"] == "decision"}
    assert len(cited) == 1
    assert len(recorded) == 1


@pytest.mark.requirement("G3")
def test_a_call_held_by_two_obligations_gets_the_same_refusal_every_time() -> None:
    # Two unconditional permits determine the allow, one needing approval, one rate-limited.
    text = gen.Policy("permit").text("needs-approval", '\n@approval("finance")')
    text += gen.Policy("permit").text("rate-limited", '\n@rate("5/minute")')
    bundle = PolicyBundle.load(
        BundleFiles(
            (("a.cedar", text),),
            ("schema.cedarschema", gen.SCHEMA),
            ("entities.json", gen.ENTITIES_TEXT),
        )
    )
    gate = Gate(bundle, store=MemoryStore(), clock=ManualClock(gen.MIDNIGHT))
    gen.register_tools(gate, [])
    args = {"n": 1, "amount": 1.0, "who": "x"}
    answers = [gate.call(gen.KNOWN[0], "read_a", args, Session("s")) for _ in range(40)]
    assert all(isinstance(a, Refusal) for a in answers)
    assert len({(a.code, a.policy) for a in answers}) == 1
