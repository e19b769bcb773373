"""The gate's decision paths: compiled slices, the Cedar-only path, and the re-check (G19).

`Gate(compiled=False)` decides with cedarpy alone and must decide every call
as the compiled gate does. `Gate(recheck=n)` re-decides compiled decisions
with cedarpy off the caller's path: a real compiled slice made wrong (the
compiler sabotaged, its self-check skipped) is caught live, recorded in the
audit chain as an incident, and its slice goes back to cedarpy.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy_strategies as gen
from support import session_with
from warded import Gate, Refusal
from warded.audit.record import verify
from warded.clock import ManualClock
from warded.policy import compiler

ALICE = gen.KNOWN[0]


def _gate(policies: list[gen.Policy], **options: Any) -> tuple[Gate, list[Any]]:
    executed: list[Any] = []
    gate = Gate(gen.load(policies), clock=ManualClock(gen.MIDNIGHT + 12 * 3600), **options)
    gen.register_tools(gate, executed)
    return gate, executed


def _answer(result: Any) -> Any:
    if isinstance(result, Refusal):
        return (result.code, result.policy)
    return ("allowed", result.policies)


@pytest.mark.requirement("G19")
@given(gen.policy_lists(), st.lists(gen.requests(), min_size=1, max_size=12))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_cedar_only_gate_decides_every_call_as_the_compiled_gate(
    policies: list[gen.Policy], requests: list[gen.Request]
) -> None:
    compiled, _ = _gate(policies)
    cedar, _ = _gate(policies, compiled=False)
    compiled._engine.compile_after = 0  # compile every slice at its first decision
    for r in requests:
        expected = _answer(cedar.decide(r.principal, r.tool, r.args, r.session(cedar)))
        assert _answer(compiled.decide(r.principal, r.tool, r.args, r.session(compiled))) == (
            expected
        )
    assert cedar._engine.compiled(ALICE, "read_a") is None  # nothing was compiled there


@pytest.mark.requirement("G19")
def test_a_disagreement_found_by_the_recheck_is_an_audited_incident_and_cedarpy_decides_after(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    policies = [gen.Policy("permit", clauses=("when { context.args.n <= 5 }",))]
    gate, executed = _gate(policies, recheck=1)
    # a real compiled slice, made wrong: `<=` compiled as `<`; its self-check skipped
    monkeypatch.setitem(compiler._COMPARE, "less_eq", "<")
    monkeypatch.setattr("warded.policy.compiled.check", lambda *a, **k: None)
    wrong = gate._engine.compiled(ALICE, "read_a")
    assert wrong is not None
    monkeypatch.undo()
    session = session_with(gate)
    args = {"n": 5, "amount": 1.0, "who": "x"}

    refused = gate.call(ALICE, "read_a", args, session)
    assert isinstance(refused, Refusal)  # the wrong slice decided
    assert executed == []
    recheck = gate._engine.recheck
    assert recheck is not None
    assert recheck.wait(60)

    events = [r.body for r in gate.store.records()]
    (incident,) = [e for e in events if e.get("detail", {}).get("event") == "policy.incident"]
    detail = incident["detail"]
    assert detail["kind"] == "compiled_decision_disagreed"
    assert detail["principal"] == f"{ALICE.type}::{ALICE.id}"
    assert detail["action"] == "Action::read_a"
    assert detail["compiled"] == {"allowed": False, "policies": []}
    assert detail["cedar"] == {"decision": "Allow", "policies": ["p0"], "errors": 0}
    assert detail["bundle_version"] == gate.version
    assert "context" not in detail
    assert "args" not in str(detail)
    assert verify(gate.store.records()).ok  # the incident is sealed in the chain
    assert "compiled decision disagreed" in caplog.text
    assert "'who'" not in caplog.text  # the log names no argument of the call

    assert gate._engine.compiled(ALICE, "read_a") is None  # the slice went back to cedarpy
    assert gate.call(ALICE, "read_a", args, session) == "read_a ran"


def test_recheck_must_sample_at_least_every_call() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        _gate([gen.Policy("permit")], recheck=0)
