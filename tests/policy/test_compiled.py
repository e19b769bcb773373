"""The compiled decision path decides as cedarpy does, or hands the request to cedarpy (G19)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import replace
from typing import Any

import cedarpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy_strategies as gen
from tiny import HEAD
from warded import BundleFiles, PolicyBundle, Principal
from warded.policy import compiler, selfcheck
from warded.policy.compiled import CompiledPath, Recheck
from warded.policy.compiler import Unsupported, compile_slice
from warded.policy.engine import Engine
from warded.policy.selfcheck import agrees, cedar_outcome

DIFFERENTIAL = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CATCH_ALL = '\n@id("catch-all") permit (principal, action, resource);'
ALICE = gen.KNOWN[0]


def decide(engine: Engine, request: gen.Request):  # type: ignore[no-untyped-def]
    return engine.decide(request.principal, request.tool, request.resource(), request.context())


def compiled_outcome(
    path: CompiledPath, tree: Any, request: dict[str, Any]
) -> tuple[bool, tuple[str, ...]] | None:
    principal = (request["principal"]["type"], request["principal"]["id"])
    action = (request["action"]["type"], request["action"]["id"])
    assert path.schema is not None, path.unsupported
    try:
        compiled = compile_slice(tree.static_policies, principal, action, path.schema, path.store)
    except Unsupported:
        return None
    return compiled.decide(request["resource"], request["context"])


# -- the differential test: random schemas, stores, policies, requests ----------


@pytest.mark.requirement("G19")
@DIFFERENTIAL
@given(world=gen.worlds())
def test_compiled_slices_decide_as_cedarpy_on_random_worlds(world: gen.World) -> None:
    schema = cedarpy.Schema.from_str(world.schema)
    entities = cedarpy.Entities.from_json_str(json.dumps(world.entities), schema=schema)
    path = CompiledPath(schema, entities)
    for text in policy_sets(world):
        policies = cedarpy.PolicySet.from_str(text)
        tree = policies.to_pst()
        for request in world.requests:
            outcome = compiled_outcome(path, tree, request)
            if outcome is not None:
                cedar = cedar_outcome(request, policies, entities, schema)
                assert agrees(outcome, cedar), (outcome, cedar, request, text, world.seed)


def policy_sets(world: gen.World) -> list[str]:
    """The world's policies; with a catch-all permit; and each alone with a catch-all permit.

    Alone, a policy's evaluation is not hidden by an error in another (an error
    anywhere sends the whole request to cedarpy).
    """
    singles = [line + CATCH_ALL for line in world.policies.splitlines()]
    return [world.policies, world.policies + CATCH_ALL, *singles]


@pytest.mark.requirement("G19")
def test_the_random_worlds_exercise_the_compiled_path() -> None:
    # The differential test proves nothing if the compiled path never answers:
    # over a fixed sample of worlds, it must answer allows and denials both,
    # and hand requests with errors to cedarpy.
    seen: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(world=gen.worlds())
    def sample(world: gen.World) -> None:
        schema = cedarpy.Schema.from_str(world.schema)
        entities = cedarpy.Entities.from_json_str(json.dumps(world.entities), schema=schema)
        path = CompiledPath(schema, entities)
        for text in policy_sets(world):
            policies = cedarpy.PolicySet.from_str(text)
            for request in world.requests:
                outcome = compiled_outcome(path, policies.to_pst(), request)
                cedar = cedar_outcome(request, policies, entities, schema)
                if outcome is None:
                    seen["errors handed to cedarpy"] += bool(cedar[2])
                elif outcome[0]:
                    seen["allow"] += 1
                else:
                    seen["forbid" if outcome[1] else "no permit"] += 1

    sample()
    assert seen["allow"] >= 50
    assert seen["forbid"] >= 10
    assert seen["no permit"] >= 50
    assert seen["errors handed to cedarpy"] >= 10


@pytest.mark.requirement("G19")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=gen.worlds(max_policies=4, max_requests=2))
def test_the_self_check_passes_every_compiled_slice_of_a_random_world(world: gen.World) -> None:
    schema = cedarpy.Schema.from_str(world.schema)
    entities = cedarpy.Entities.from_json_str(json.dumps(world.entities), schema=schema)
    path = CompiledPath(schema, entities)
    policies = cedarpy.PolicySet.from_str(world.policies + CATCH_ALL)
    for request in world.requests:
        principal = (request["principal"]["type"], request["principal"]["id"])
        action = (request["action"]["type"], request["action"]["id"])
        path.slice(policies.to_pst(), policies, principal, action)
    assert path.disagreements == []


# -- the engine ---------------------------------------------------------------------


@pytest.mark.requirement("G19")
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies=gen.policy_lists(max_size=8), requests=st.lists(gen.requests(), max_size=8))
def test_the_engine_decides_as_the_cedar_only_engine(policies, requests) -> None:  # type: ignore[no-untyped-def]
    bundle = gen.load([*policies, gen.Policy("permit")])
    fast, cedar_only = Engine(bundle, compile_after=0), Engine(bundle, compiled=False)
    for request in requests:
        assert decide(fast, request) == decide(cedar_only, request)
    assert fast.compiled_path.disagreements == []


def test_a_slice_is_compiled_after_it_has_been_decided_compile_after_times() -> None:
    engine = Engine(gen.load([gen.Policy("permit")]), compile_after=2)
    request = gen.Request(ALICE, "read_a", {"n": 1, "amount": 1.0, "who": "x"})
    for _ in range(2):
        decide(engine, request)
        assert engine._compiled == {}
    decide(engine, request)
    assert engine._compiled[("Agent", "alice", "read_a")] is not None
    assert (
        Engine(gen.load([gen.Policy("permit")]), compiled=False).compiled(ALICE, "read_a") is None
    )


@pytest.mark.requirement("G19")
def test_a_request_on_which_cedar_reports_an_error_is_decided_by_cedarpy() -> None:
    bundle = gen.load(
        [gen.Policy("permit"), gen.Policy("forbid", clauses=(f"when {{ {gen.OVERFLOWING} }}",))]
    )
    engine = Engine(bundle, compile_after=0)
    request = gen.Request(ALICE, "read_a", {"n": gen.OVERFLOW_N, "amount": 1.0, "who": "x"})
    compiled = engine.compiled(ALICE, "read_a")
    assert compiled is not None
    assert compiled.decide(request.resource(), request.context()) is None
    decision = decide(engine, request)
    assert not decision.allowed
    assert decision.errors  # cedarpy's own error text
    assert "overflow" in decision.errors[0]


@pytest.mark.requirement("G19")
def test_a_stranger_principal_with_an_attribute_condition_is_decided_by_cedarpy() -> None:
    bundle = gen.load([gen.Policy("permit", clauses=("when { principal.level >= 0 }",))])
    engine, cedar_only = Engine(bundle, compile_after=0), Engine(bundle, compiled=False)
    request = gen.Request(gen.STRANGER, "read_a", {"n": 1, "amount": 1.0, "who": "x"})
    compiled = engine.compiled(gen.STRANGER, "read_a")
    assert compiled is not None
    assert compiled.decide(request.resource(), request.context()) is None
    assert decide(engine, request) == decide(cedar_only, request)
    assert not decide(engine, request).allowed


IP_SCHEMA = gen.SCHEMA.replace("type Args = {", "type Args = { addr?: ipaddr,")


@pytest.mark.requirement("G19")
def test_a_bundle_with_a_construct_outside_the_subset_still_decides_through_cedarpy() -> None:
    text = gen.Policy("permit").text("open") + gen.Policy(
        "forbid",
        clauses=(
            'when { context.args has addr && context.args.addr.isInRange(ip("10.0.0.0/8")) }',
        ),
    ).text("no-internal")
    bundle = PolicyBundle.load(
        BundleFiles(
            (("a.cedar", text),),
            ("schema.cedarschema", IP_SCHEMA),
            ("entities.json", gen.ENTITIES_TEXT),
        )
    )
    engine = Engine(bundle, compile_after=0)
    assert engine.compiled(ALICE, "read_a") is None
    context = gen.Request(ALICE, "read_a", {"n": 1, "amount": 1.0, "who": "x"}).context()
    resource = {"type": "Tool", "id": "read_a"}
    inside = {**context, "args": {**context["args"], "addr": "10.1.2.3"}}
    outside = {**context, "args": {**context["args"], "addr": "192.168.0.1"}}
    denied = engine.decide(ALICE, "read_a", resource, inside)
    assert (denied.allowed, denied.policies) == (False, ("no-internal",))
    allowed = engine.decide(ALICE, "read_a", resource, outside)
    assert (allowed.allowed, allowed.policies) == (True, ("open",))


# -- the self-check and the re-check catch a compiled slice that is wrong --------


@pytest.mark.requirement("G19")
@pytest.mark.parametrize(
    ("condition", "operator"),
    [
        ("context.args.n <= 5", "less_eq"),
        ("context.args.n > -3", "greater"),
        ('context.args.amount.lessThan(decimal("12.34"))', None),
    ],
)
def test_the_self_check_refuses_a_slice_that_is_wrong_at_a_boundary(
    condition: str, operator: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sabotage the compiler: `<=` compiled as `<`, `>` as `>=`, decimal `<` as `<=`.
    if operator == "less_eq":
        monkeypatch.setitem(compiler._COMPARE, "less_eq", "<")
    elif operator == "greater":
        monkeypatch.setitem(compiler._COMPARE, "greater", ">=")
    else:
        monkeypatch.setitem(compiler._DECIMAL, "decimal_less_than", "_dle")
        monkeypatch.setitem(compiler._DECIMAL_OP, "decimal_less_than", "<=")
    bundle = gen.load([gen.Policy("permit", clauses=(f"when {{ {condition} }}",))])
    engine = Engine(bundle, compile_after=0)
    assert engine.compiled(ALICE, "read_a") is None
    (found,) = engine.compiled_path.disagreements
    assert found.principal == ("Agent", "alice")
    assert found.cedar[2] == ()  # a clean answer from cedarpy, not an error
    # and the bundle still decides correctly, through cedarpy
    request = gen.Request(ALICE, "read_a", {"n": 5, "amount": 12.34, "who": "x"})
    assert decide(engine, request) == decide(Engine(bundle, compiled=False), request)


@pytest.mark.requirement("G19")
def test_a_sampled_disagreement_is_an_incident_and_sends_the_slice_back_to_cedarpy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A wrong slice that a blind self-check let through: the re-check must catch it live.
    monkeypatch.setitem(compiler._COMPARE, "less_eq", "<")
    monkeypatch.setattr("warded.policy.compiled.check", lambda *a, **k: None)
    incidents: list[selfcheck.Disagreement] = []
    recheck = Recheck(every=1, on_incident=incidents.append)
    bundle = gen.load([gen.Policy("permit", clauses=("when { context.args.n <= 5 }",))])
    engine = Engine(bundle, compile_after=0, recheck=recheck)
    request = gen.Request(ALICE, "read_a", {"n": 5, "amount": 1.0, "who": "x"})
    wrong = decide(engine, request)
    assert not wrong.allowed  # the sabotaged slice decided
    assert recheck.wait(60)
    (incident,) = incidents
    assert incident.compiled == (False, ())
    assert incident.cedar[0] == "Allow"
    assert engine.compiled(ALICE, "read_a") is None
    assert decide(engine, request).allowed  # cedarpy again


def test_recheck_samples_every_nth_compiled_decision_off_the_callers_thread() -> None:
    callers: set[int] = set()
    recheck = Recheck(every=3)
    original = recheck._run

    def run() -> None:
        callers.add(threading.get_ident())
        original()

    recheck._run = run  # type: ignore[method-assign]
    engine = Engine(gen.load([gen.Policy("permit")]), compile_after=0, recheck=recheck)
    request = gen.Request(ALICE, "read_a", {"n": 1, "amount": 1.0, "who": "x"})
    for _ in range(9):
        decide(engine, request)
    assert recheck.wait(60)
    assert recheck.checked == 3
    assert threading.get_ident() not in callers
    assert engine.compiled_path.disagreements == []


# -- Cedar's semantics where Python's differ -----------------------------------------

SEMANTICS_SCHEMA = """
entity U = { b: Bool, n: Long, s: Set<Long>, bs: Set<Bool> };
action go appliesTo { principal: [U], resource: [U],
  context: { n: Long, b: Bool, s: String, d: decimal, ns: Set<Long>, bs: Set<Bool> } };
"""
SEMANTICS_ENTITIES = [
    {
        "uid": {"type": "U", "id": "u"},
        "attrs": {"b": True, "n": 1, "s": [1], "bs": [True]},
        "parents": [],
    }
]


def semantics_check(condition: str, context: dict[str, Any]) -> tuple[Any, Any]:
    schema = cedarpy.Schema.from_str(SEMANTICS_SCHEMA)
    entities = cedarpy.Entities.from_json_str(json.dumps(SEMANTICS_ENTITIES), schema=schema)
    policies = cedarpy.PolicySet.from_str(
        f"permit (principal, action, resource) when {{ {condition} }};"
    )
    request = {
        "principal": {"type": "U", "id": "u"},
        "action": {"type": "Action", "id": "go"},
        "resource": {"type": "U", "id": "u"},
        "context": context,
    }
    path = CompiledPath(schema, entities)
    return compiled_outcome(path, policies.to_pst(), request), cedar_outcome(
        request, policies, entities, schema
    )


BASE = {"n": 1, "b": True, "s": "a", "d": "1.0", "ns": [1], "bs": [True]}


@pytest.mark.requirement("G19")
@pytest.mark.parametrize(
    "condition",
    [
        "context.b == context.n",  # True == 1 in Python
        "context.ns == context.bs",  # {1} == {True} in Python
        "context.ns.contains(true)",
        "context.bs.contains(1)",
        "principal.s == principal.bs",
        "{a: 1} == {a: true}",
        "[1, 1] == [1]",
        "[[1], [1, 2]] == [[2, 1], [1]]",
        '{a: [1, 2], b: "x"} == {b: "x", a: [2, 1]}',
        'decimal("1.0") == decimal("1.0000")',
        'context.d == decimal("1.0")',
        "context.n * 4611686018427387904 > 0",
        "context.n + 9223372036854775807 > 0",
        "-(-9223372036854775807 - context.n) > 0",
        "context.n - -9223372036854775807 > 0",
        'context.s like "a*"',
        'context.s like "*\\*"',
        "principal in [principal, 1]",
        "principal.nope == 1",
        "if context.b then 1 else false",
        "context.b || 1 == 1",
        "!context.b || 1",
        "false && (1 + true)",
        "true || (1 + true)",
    ],
)
def test_python_equality_and_arithmetic_never_stand_in_for_cedars(condition: str) -> None:
    compiled, cedar = semantics_check(condition, BASE)
    if compiled is not None:
        assert agrees(compiled, cedar), (compiled, cedar)


DECIMALS = st.one_of(
    st.from_regex(r"-?[0-9]{1,16}\.[0-9]{1,5}", fullmatch=True),
    st.text(alphabet="-+.0123456789e_ \u0661", max_size=8),
    st.sampled_from(["922337203685477.5807", "922337203685477.5808", "-922337203685477.5808"]),
)


@pytest.mark.requirement("G19")
@settings(max_examples=150, deadline=None)
@given(text=DECIMALS, other=DECIMALS)
def test_decimals_in_the_context_parse_and_compare_as_cedars(text: str, other: str) -> None:
    compiled, cedar = semantics_check(
        f"context.d.lessThan(decimal({json.dumps(other, ensure_ascii=False)}))", {**BASE, "d": text}
    )
    if compiled is not None:
        assert agrees(compiled, cedar), (compiled, cedar)


@pytest.mark.requirement("G19")
@settings(max_examples=150, deadline=None)
@given(
    pattern=st.lists(st.sampled_from(["a", "b", "*", "\\*", "\u00e9"]), max_size=6).map("".join),
    text=st.text(alphabet="ab*\u00e9", max_size=8),
)
def test_like_matches_as_cedars(pattern: str, text: str) -> None:
    quoted = json.dumps(pattern, ensure_ascii=False)
    compiled, cedar = semantics_check(f"context.s like {quoted}", {**BASE, "s": text})
    assert compiled is not None
    assert agrees(compiled, cedar), (compiled, cedar)


@pytest.mark.requirement("G19")
@pytest.mark.parametrize(
    "context",
    [
        {**BASE, "n": True},
        {**BASE, "n": 2**63},
        {**BASE, "b": 1},
        {**BASE, "extra": 1},
        {k: v for k, v in BASE.items() if k != "d"},
        {**BASE, "d": 1.5},
        {**BASE, "d": {"__extn": {"fn": "ip", "arg": "1.0"}}},
        {**BASE, "ns": [1, True]},
        {**BASE, "s": "a\ud800"},
        {**BASE, "ns": None},
    ],
)
def test_a_context_cedar_would_refuse_is_handed_to_cedarpy(context: dict[str, Any]) -> None:
    compiled, cedar = semantics_check("true", context)
    assert compiled is None
    assert cedar[0] != "Allow" or cedar[2]


def test_the_principal_and_the_resource_must_be_of_the_types_the_action_takes() -> None:
    bundle = gen.load([gen.Policy("permit")])
    engine = Engine(bundle, compile_after=0)
    assert engine.compiled(Principal("Group", "eng"), "read_a") is None
    compiled = engine.compiled(ALICE, "read_a")
    assert compiled is not None
    context = gen.Request(ALICE, "read_a", {"n": 1, "amount": 1.0, "who": "x"}).context()
    assert compiled.decide({"type": "Agent", "id": "bob"}, context) is None
    assert compiled.decide({"type": "Tool", "id": "x", "extra": "y"}, context) is None
    assert compiled.decide({"type": "Tool", "id": "x"}, context) == (True, ("p0",))


def test_a_slice_is_not_compiled_when_the_schema_names_are_ambiguous() -> None:
    # `Ctx` is both a common type and an entity type: the reader refuses to guess.
    schema = gen.SCHEMA.replace("entity Tool;", "entity Tool;\nentity Ctx;")
    bundle = PolicyBundle.load(
        replace(gen.bundle_files([gen.Policy("permit")]), schema=("s.cedarschema", schema))
    )
    engine = Engine(bundle, compile_after=0)
    assert engine.compiled_path.unsupported is not None
    assert engine.compiled(ALICE, "read_a") is None
    request = gen.Request(ALICE, "read_a", {"n": 1, "amount": 1.0, "who": "x"})
    assert decide(engine, request).allowed


@pytest.mark.requirement("G20")
def test_a_disagreement_is_logged_without_cedars_errors_which_quote_the_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "SECRET-ARGUMENT-VALUE"
    schema = cedarpy.Schema.from_str(SEMANTICS_SCHEMA)
    entities = cedarpy.Entities.from_json_str(json.dumps(SEMANTICS_ENTITIES), schema=schema)
    path = CompiledPath(schema, entities)
    policies = cedarpy.PolicySet.from_str("permit (principal, action, resource);")
    request = {
        "principal": {"type": "U", "id": "u"},
        "action": {"type": "Action", "id": "go"},
        "resource": {"type": "U", "id": "u"},
        "context": {**BASE, "n": secret},  # Cedar refuses it, quoting the whole context
    }
    incidents: list[selfcheck.Disagreement] = []
    recheck = Recheck(every=1, on_incident=incidents.append)

    recheck.submit(request, (True, ("policy0",)), policies, path, lambda: None, "v1")

    assert recheck.wait(60)
    (incident,) = incidents
    assert any(secret in e for e in incident.cedar[2])  # the error does quote it
    assert "compiled decision disagreed" in caplog.text
    assert secret not in caplog.text


# -- slices shared by the engines of one bundle --------------------------------------


def _team_bundle(entities: list[dict[str, Any]], schema_extra: str = "") -> PolicyBundle:
    schema = (
        HEAD + "action go appliesTo { principal: [Agent], resource: [Tool],\n"
        "  context: { args: {}, session: Session, now: Now } };\n" + schema_extra
    )
    policy = '@id("ops")\npermit (principal in Team::"ops", action, resource);\n'
    return PolicyBundle.load(
        BundleFiles(
            (("p.cedar", policy),), ("s.cedarschema", schema), ("e.json", json.dumps(entities))
        )
    )


def _agent(*teams: str) -> list[dict[str, Any]]:
    parents = [{"type": "Team", "id": t} for t in teams]
    teams_ = [{"uid": {"type": "Team", "id": t}, "attrs": {}, "parents": []} for t in teams]
    return [*teams_, {"uid": {"type": "Agent", "id": "bot"}, "attrs": {}, "parents": parents}]


@pytest.mark.requirement("G19")
def test_engines_on_one_bundle_share_its_slices_and_no_other_bundle_reuses_them() -> None:
    bot = Principal.agent("bot")
    request = gen.Request(bot, "go", {})
    in_ops = _team_bundle(_agent("ops"))
    first, second = Engine(in_ops, compile_after=0), Engine(in_ops, compile_after=0)
    assert decide(first, request).allowed
    assert second.compiled(bot, "go") is first.compiled(bot, "go") is not None
    assert Engine(in_ops, compiled=False).compiled(bot, "go") is None  # cedarpy only: unchanged
    # the same policy over other entities, another schema, or the same files loaded again
    # (or the bundle copied with other entities, its version unchanged): nothing is reused
    out_of_ops = _team_bundle(_agent("dev"))
    other_schema = _team_bundle(_agent("ops"), "entity Spare;\n")
    again = _team_bundle(_agent("ops"))
    copied = replace(in_ops, entities=out_of_ops.entities)
    for bundle, allowed in ((out_of_ops, False), (other_schema, True), (again, True)):
        engine = Engine(bundle, compile_after=0)
        assert decide(engine, request).allowed is allowed
        assert engine.compiled(bot, "go") is not first.compiled(bot, "go")
    assert copied.version == in_ops.version
    engine = Engine(copied, compile_after=0)
    assert engine._shared is not first._shared
    assert decide(engine, request).allowed is False
