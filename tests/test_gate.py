"""The call lifecycle: resolve, freeze, validate, decide, audit, execute, record."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any

import pydantic
import pytest

from support import TEST_KEY, session_with
from warded import (
    Decision,
    Gate,
    MemoryStore,
    Principal,
    Refusal,
    Session,
    ToolDefinitionError,
    ToolFailure,
    WardedError,
)
from warded.canonical import args_digest, canonical_json
from warded.outputs import MAX_DEPTH

KNOWN = "GB33BUKB20201555555555"
PAY = {"recipient": KNOWN, "amount": 42.5, "subject": "paper"}


def _bodies(gate: Gate) -> list[dict[str, Any]]:
    return [r.body for r in gate.store.records()]


def test_an_allowed_call_runs_once_and_is_recorded_before_and_after(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    result = gate.call(billing, "send_money", PAY, session)
    assert result == {"status": "sent"}
    assert executed == [("send_money", PAY)]
    decision, outcome = _bodies(gate)
    assert (decision["kind"], decision["decision"], decision["policies"]) == (
        "decision",
        "allow",
        ["payments.small-known"],
    )
    assert (outcome["kind"], outcome["outcome"], outcome["call"]) == (
        "outcome",
        "ok",
        decision["call"],
    )
    assert decision["bundle_version"] == gate.version


@pytest.mark.requirement("G7")
def test_mutating_the_callers_arguments_after_the_check_changes_nothing(
    billing: Principal, session: Session, banking_dir: Any
) -> None:
    gate = Gate.from_directory(banking_dir)
    args: dict[str, Any] = {"recipient": KNOWN, "amount": 42.5, "subject": "paper"}
    seen: list[tuple[str, float]] = []

    def resource(frozen: Any) -> tuple[str, str]:
        # runs after the arguments were frozen and before the decision:
        # the caller swaps in a new payee and a large amount
        args["recipient"] = "XX00ATTACKER"
        args["amount"] = 4_999
        return ("Payee", frozen["recipient"])

    @gate.tool(resource=resource)
    def send_money(recipient: str, amount: float, subject: str) -> str:
        seen.append((recipient, amount))
        return "ok"

    assert gate.call(billing, "send_money", args, session) == "ok"
    assert seen == [(KNOWN, 42.5)]


@pytest.mark.requirement("G7")
def test_the_tool_receives_exactly_the_frozen_arguments_whose_digest_is_audited(
    billing: Principal, session: Session, banking_dir: Any
) -> None:
    gate = Gate.from_directory(banking_dir, key=TEST_KEY)
    received: list[dict[str, Any]] = []
    args: dict[str, Any] = {"recipient": KNOWN, "amount": 42.5, "subject": "paper"}

    @gate.tool(resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> str:
        received.append({"recipient": recipient, "amount": amount, "subject": subject})
        args["amount"] = 1_200  # the caller's dict, mutated mid-call
        return "ok"

    assert gate.call(billing, "send_money", args, session) == "ok"
    assert received == [{"recipient": KNOWN, "amount": 42.5, "subject": "paper"}]
    frozen = canonical_json(received[0])
    decision = _bodies(gate)[0]
    assert decision["args_digest"] == args_digest(frozen, TEST_KEY)
    # a second call with the mutated dict is a different call, decided afresh
    refused = gate.call(billing, "send_money", args, session)
    assert isinstance(refused, Refusal)
    assert refused.code == "approval_required"
    assert len(received) == 1


@pytest.mark.requirement("G7")
def test_defaults_are_part_of_the_frozen_arguments_the_policy_sees(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    assert gate.call(billing, "get_transactions", {}, session) == list(range(10))
    assert executed == [("get_transactions", {"limit": 10})]
    body = _bodies(gate)[0]
    assert body["args"] == {"limit": 10}
    assert body["args_digest"] == args_digest(canonical_json({"limit": 10}), TEST_KEY)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"recipient": KNOWN, "amount": "42.5", "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": True, "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": [1], "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": {"$gt": 0}, "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": 1, "subject": "x", "extra": 1}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": 2**60, "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": float("nan"), "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": float("inf"), "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": 0.00001, "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": 1e300, "subject": "x"}, "invalid_arguments"),
        ({"recipient": KNOWN, "amount": -5, "subject": "x"}, "not_permitted"),
        ({"recipient": KNOWN.lower(), "amount": 5, "subject": "x"}, "not_permitted"),
        ({"recipient": "GB33BUKB2020155555555５", "amount": 5, "subject": "x"}, "not_permitted"),
        ({"recipient": KNOWN, "amount": 5000.0001, "subject": "x"}, "not_permitted"),
        ({"recipient": KNOWN, "amount": 100, "subject": "x"}, "approval_required"),
    ],
)
def test_type_confusion_and_lookalike_arguments_never_run(
    gate: Gate, billing: Principal, session: Session, executed: list[Any], args: Any, code: str
) -> None:
    result = gate.call(billing, "send_money", args, session)
    assert isinstance(result, Refusal)
    assert result.code == code
    assert executed == []


@pytest.mark.parametrize("args", [None, [], "x", 5, {1: "a"}])
def test_arguments_that_are_not_an_object_are_invalid(
    gate: Gate, billing: Principal, session: Session, executed: list[Any], args: Any
) -> None:
    result = gate.call(billing, "get_balance", args, session)
    assert isinstance(result, Refusal)
    assert result.code == "invalid_arguments"
    assert executed == []


def _nested(levels: int) -> Any:
    value: Any = "x"
    for i in range(levels):
        value = {"a": value} if i % 2 else [value]
    return value


@pytest.mark.requirement("G11")
@pytest.mark.parametrize("levels", [MAX_DEPTH, MAX_DEPTH + 1, 500, 900, 100_000])
def test_arguments_nested_too_deep_are_invalid_not_an_internal_error(
    gate: Gate, billing: Principal, session: Session, executed: list[Any], levels: int
) -> None:
    """Every step after freezing walks the arguments; nesting that would exhaust one of
    them (the redacted copy ran out of stack at ~500) is the caller's error, said so."""
    args = {**PAY, "subject": _nested(levels - 1)}  # the arguments object is a level too
    for answer in (
        gate.call(billing, "send_money", args, session),
        gate.decide(billing, "send_money", args, session),
    ):
        assert isinstance(answer, Refusal)
        assert answer.code == "invalid_arguments"
        if levels <= MAX_DEPTH:
            assert answer.detail == "subject: violates 'type'"  # it reached the schema
        else:
            assert answer.detail is not None
            assert answer.detail.startswith(f"arguments nested deeper than {MAX_DEPTH} levels")
    assert executed == []
    (record,) = [b for b in _bodies(gate) if b["kind"] == "decision"]
    assert record["code"] == "invalid_arguments"


def test_invalid_argument_detail_names_the_parameter_and_constraint_not_the_value(
    gate: Gate, billing: Principal, session: Session
) -> None:
    result = gate.call(billing, "send_money", {**PAY, "amount": "SECRET-VALUE"}, session)
    assert isinstance(result, Refusal)
    assert result.detail == "amount: violates 'type'"
    assert "SECRET-VALUE" not in result.to_model()


def test_a_tool_that_raises_gives_a_tool_failure_and_an_error_outcome(
    billing: Principal, session: Session, banking_dir: Any
) -> None:
    gate = Gate.from_directory(banking_dir)

    @gate.tool
    def get_balance() -> float:
        raise RuntimeError("ledger offline: password=hunter2")

    result = gate.call(billing, "get_balance", {}, session)
    assert isinstance(result, ToolFailure)
    assert "hunter2" not in result.to_model()
    outcome = _bodies(gate)[-1]
    assert (outcome["outcome"], outcome["detail"]["error"], outcome["id"]) == (
        "error",
        "RuntimeError",
        result.ref,
    )


def test_async_tools_run_with_acall_and_with_call_outside_a_loop(
    billing: Principal, session: Session, banking_dir: Any
) -> None:
    gate = Gate.from_directory(banking_dir)

    @gate.tool
    async def get_balance() -> float:
        await asyncio.sleep(0)
        return 7.0

    assert gate.call(billing, "get_balance", {}, session) == 7.0
    assert asyncio.run(gate.acall(billing, "get_balance", {}, session)) == 7.0

    async def inside_loop() -> Any:
        return gate.call(billing, "get_balance", {}, session)

    refused = asyncio.run(inside_loop())
    assert isinstance(refused, Refusal)
    assert refused.code == "unavailable"


def test_acall_refuses_like_call(gate: Gate, billing: Principal, session: Session) -> None:
    result = asyncio.run(gate.acall(billing, "send_money", {**PAY, "amount": 1200}, session))
    assert isinstance(result, Refusal)
    assert result.code == "approval_required"


def test_decide_is_a_dry_run_that_neither_executes_nor_audits(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    allowed = gate.decide(billing, "send_money", PAY, session)
    assert isinstance(allowed, Decision)
    assert allowed.allowed
    held = gate.decide(billing, "send_money", {**PAY, "amount": 1200}, session)
    assert isinstance(held, Refusal)
    assert held.code == "approval_required"
    assert executed == []
    assert _bodies(gate) == []


def test_every_determining_permits_obligations_apply(
    billing: Principal, session: Session, banking_dir: Any, tmp_path: Any
) -> None:
    import shutil

    shutil.copytree(banking_dir, tmp_path / "b")
    (tmp_path / "b" / "extra.cedar").write_text(
        '@id("payments.any-with-limit")\n@rate("5/minute")\n'
        'permit (principal in Team::"billing", action == Action::"send_money", resource);\n'
    )
    gate = Gate.from_directory(tmp_path / "b")

    @gate.tool(resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> str:
        return "sent"

    # the plain permit and the rate-limited permit both determine the allow,
    # so the rate limit applies to payments the plain permit allows too
    results = [gate.call(billing, "send_money", PAY, session) for _ in range(6)]
    assert results[:5] == ["sent"] * 5
    assert isinstance(results[5], Refusal)
    assert results[5].code == "limit_exceeded"


def test_session_labels_only_accumulate_and_reach_the_policy(
    gate: Gate, billing: Principal, executed: list[Any]
) -> None:
    s = Session("s")
    gate.label(s, ["seen-web"])
    gate.label(s, ["untrusted"])
    gate.label(s, [])
    assert gate.session_state(s).labels == {"seen-web", "untrusted"}
    result = gate.call(billing, "send_money", PAY, s)
    assert isinstance(result, Refusal)
    assert result.policy == "session.untrusted-no-payments"
    assert executed == []


def test_tool_registration_rejects_bad_declarations(banking_dir: Any) -> None:
    gate = Gate.from_directory(banking_dir)

    def f(*args: int) -> None: ...

    with pytest.raises(ToolDefinitionError):
        gate.tool(f)
    with pytest.raises(ToolDefinitionError):
        gate.register("bad name!", {"type": "object"}, lambda: None)
    with pytest.raises(ToolDefinitionError):
        gate.register("t", {"type": "array"}, lambda: None)
    with pytest.raises(ToolDefinitionError):
        gate.register("t", {"type": "object", "properties": {"a": {"type": 5}}}, lambda: None)
    with pytest.raises(ToolDefinitionError):
        gate.register("t", {"type": "object"}, lambda: None, effect="dangerous")
    with pytest.raises(ToolDefinitionError):
        gate.register("t\n", {"type": "object"}, lambda: None)  # `$` would match before it
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(2000):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(ToolDefinitionError, match="nested too deep"):
        gate.register("t", deep, lambda: None)
    gate.register("t", {"type": "object"}, lambda: None)
    with pytest.raises(WardedError):
        gate.register("t", {"type": "object"}, lambda: None)


# -- G16: refusals leak nothing ------------------------------------------------

SECRETS = ["hunter2-SECRET", "XX00SECRETIBAN0000", "987654.3210"]


@pytest.mark.requirement("G16")
def test_refusals_never_echo_arguments_hidden_names_or_policy_text(
    gate: Gate, billing: Principal, support: Principal, banking_dir: Any
) -> None:
    policy_text = " ".join(p.read_text() for p in banking_dir.glob("*.cedar"))
    conditions = set(re.findall(r"when \{([^}]*)\}", policy_text))
    attempts: list[tuple[Principal, str, Any, Session]] = [
        (
            billing,
            "send_money",
            {"recipient": SECRETS[1], "amount": 5, "subject": SECRETS[0]},
            Session("a"),
        ),
        (
            billing,
            "send_money",
            {"recipient": KNOWN, "amount": 987654.321, "subject": SECRETS[0]},
            Session("b"),
        ),
        (
            billing,
            "send_money",
            {"recipient": KNOWN, "amount": SECRETS[2], "subject": "x"},
            Session("c"),
        ),
        (
            billing,
            "send_money",
            {"recipient": KNOWN, "amount": 5, "subject": SECRETS[0]},
            session_with(gate, {"untrusted"}),
        ),
        (billing, "update_password", {"password": SECRETS[0]}, Session("e")),
        (
            support,
            "send_money",
            {"recipient": SECRETS[1], "amount": 5, "subject": "x"},
            Session("f"),
        ),
        (support, SECRETS[0], {"password": SECRETS[0]}, Session("g")),
        (
            billing,
            "send_money",
            {"recipient": KNOWN, "amount": 5, SECRETS[0]: 1, "subject": "x"},
            Session("h"),
        ),
    ]
    texts = []
    for who, tool, args, s in attempts:
        refusal = gate.call(who, tool, args, s)
        assert isinstance(refusal, Refusal)
        text = refusal.to_model()
        texts.append(text)
        for secret in [*SECRETS, "update_password", "send_money", *conditions]:
            assert secret not in text
    assert len(texts) == len(attempts)


@pytest.mark.requirement("G16")
def test_the_same_code_always_gives_the_same_message(
    gate: Gate, billing: Principal, support: Principal
) -> None:
    messages: dict[str, set[str]] = {}
    for who in (billing, support):
        for amount in (-1, 5, 150, 10_000, "x"):
            for labels in ((), ("untrusted",)):
                for tool in ("send_money", "update_password", "nope", "get_balance"):
                    args = {"recipient": KNOWN, "amount": amount, "subject": "s"}
                    r = gate.call(who, tool, args, session_with(gate, labels))
                    if isinstance(r, Refusal):
                        d = json.loads(r.to_model())
                        messages.setdefault(d["code"], set()).add(d["message"])
    assert {"not_permitted", "approval_required", "unknown_tool", "invalid_arguments"} <= set(
        messages
    )
    assert all(len(m) == 1 for m in messages.values()), messages


@pytest.mark.requirement("G16")
def test_refusal_shape_is_stable(gate: Gate, billing: Principal, session: Session) -> None:
    r = gate.call(billing, "send_money", {**PAY, "amount": -1}, session)
    assert isinstance(r, Refusal)
    d = json.loads(r.to_model())
    assert set(d) == {"refused", "code", "kind", "message", "policy", "ref"}
    assert (d["refused"], d["code"], d["kind"], d["policy"]) == (
        True,
        "not_permitted",
        "safety",
        "payments.positive",
    )
    assert d["ref"] == _bodies(gate)[-1]["id"]


def test_an_unknown_principal_sees_no_tools_and_runs_nothing(
    gate: Gate, session: Session, executed: list[Any]
) -> None:
    ghost = Principal.agent("ghost")
    assert gate.tools(ghost, session) == []
    r = gate.call(ghost, "get_balance", {}, session)
    assert isinstance(r, Refusal)
    assert r.code == "unknown_tool"
    assert executed == []


def test_audit_keeps_a_redacted_copy_of_sensitive_arguments(
    billing: Principal, session: Session, banking_dir: Any
) -> None:
    gate = Gate.from_directory(banking_dir, store=MemoryStore())

    @gate.tool(sensitive=["subject"], resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> str:
        return "ok"

    gate.call(billing, "send_money", {**PAY, "subject": "pin 4242"}, session)
    raw = b"".join(r.raw for r in gate.store.records())
    assert b"4242" not in raw
    assert _bodies(gate)[0]["args"]["subject"] == "[redacted]"


class _Marker:
    """A plug-in scanner: flags the word SECRET-<letters> as a secret."""

    name = "secrets"

    def scan(self, text: str) -> list[Any]:
        from warded.scanners import Finding

        found = re.search(r"SECRET-[A-Z]+", text)
        return [Finding("secrets", "marker", "", found.start(), found.end(), 1.0)] if found else []


@pytest.mark.requirement("G16")
def test_a_secret_found_in_arguments_is_masked_in_the_audit_even_inside_engine_errors(
    tmp_path: Any,
) -> None:
    from warded import BundleFiles, PolicyBundle

    schema = (
        "type Session = { id: String, labels: Set<String>, calls: Long };\n"
        "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
        "entity Agent; entity Tool;\n"
        "action probe appliesTo { principal: [Agent], resource: [Tool],\n"
        "  context: { args: { n: Long }, session: Session, now: Now } };\n"
    )
    files = BundleFiles(
        (("p.cedar", "permit (principal, action, resource);\n"),),
        ("schema.cedarschema", schema),
    )
    gate = Gate(PolicyBundle.load(files), scanners=[_Marker()])
    ran: list[str] = []
    # the tool says `n` is a string; Cedar's schema says Long: the request
    # cannot be built, and Cedar's error quotes the context it was given
    gate.register("probe", {"type": "object", "properties": {"n": {"type": "string"}}}, ran.append)
    result = gate.call(Principal.agent("a"), "probe", {"n": "key SECRET-ABCDEF"}, Session("s"))
    assert isinstance(result, Refusal)
    assert result.code == "not_permitted"
    assert ran == []
    body = _bodies(gate)[-1]
    assert body["reasons"], "the engine's error is recorded"
    raw = b"".join(r.raw for r in gate.store.records())
    assert b"SECRET-ABCDEF" not in raw
    assert body["args"]["n"] == "key [redacted:marker]"


def test_a_secret_in_the_arguments_is_refused_by_the_policy_that_reads_context_scan(
    gate: Gate, billing: Principal, session: Session, executed: list[Any]
) -> None:
    leak = {**PAY, "subject": "key AKIAIOSFODNN7EXAMPLE"}
    refused = gate.call(billing, "send_money", leak, session)
    assert isinstance(refused, Refusal)
    assert (refused.code, refused.policy) == ("not_permitted", "guard.no-secrets-in-arguments")
    assert executed == []
    raw = b"".join(r.raw for r in gate.store.records())
    assert b"AKIAIOSFODNN7EXAMPLE" not in raw
    assert gate.call(billing, "send_money", PAY, session) == {"status": "sent"}


def _output_gate(redact: bool) -> tuple[Gate, Session]:
    from warded import BundleFiles, PolicyBundle

    schema = (
        "type Session = { id: String, labels: Set<String>, calls: Long };\n"
        "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
        "entity Agent; entity Tool;\n"
        "action fetch appliesTo { principal: [Agent], resource: [Tool],\n"
        "  context: { args: {}, session: Session, now: Now } };\n"
    )
    note = '@redact("secrets")\n' if redact else ""
    files = BundleFiles(
        (("p.cedar", f'@id("fetch")\n{note}permit (principal, action, resource);\n'),),
        ("schema.cedarschema", schema),
    )
    gate = Gate(PolicyBundle.load(files), output_scanners=[_Marker()])
    gate.register("fetch", {"type": "object"}, lambda: {"page": "token SECRET-XYZ here"})
    return gate, Session("s")


def test_output_findings_label_the_session_and_are_masked_where_the_permit_says_redact() -> None:
    gate, session = _output_gate(redact=True)
    result = gate.call(Principal.agent("a"), "fetch", {}, session)
    assert result == {"page": "token [redacted:marker] here"}
    assert "secrets" in gate.session_state(session).labels
    outcome = _bodies(gate)[-1]
    assert outcome["detail"]["findings"] == [
        {"scanner": "secrets", "kind": "marker", "path": "page"}
    ]
    assert b"SECRET-XYZ" not in b"".join(r.raw for r in gate.store.records())


def test_without_redact_the_result_is_returned_whole_but_the_session_is_still_labelled() -> None:
    gate, session = _output_gate(redact=False)
    result = gate.call(Principal.agent("a"), "fetch", {}, session)
    assert result == {"page": "token SECRET-XYZ here"}
    assert "secrets" in gate.session_state(session).labels


@pytest.mark.requirement("G7")
def _schema_for(action: str, args: str) -> str:
    return (
        "type Session = { id: String, labels: Set<String>, calls: Long };\n"
        "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
        "entity Agent; entity Tool;\n"
        f"action {action} appliesTo {{ principal: [Agent], resource: [Tool],\n"
        f"  context: {{ args: {{ {args} }}, session: Session, now: Now }} }};\n"
    )


@pytest.mark.requirement("G7")
def test_annotated_constraints_on_parameters_are_enforced_before_the_decision() -> None:
    from warded import BundleFiles, PolicyBundle

    gate = Gate(
        PolicyBundle.load(
            BundleFiles(
                (("p.cedar", "permit (principal, action, resource);\n"),),
                ("schema.cedarschema", _schema_for("count_to", "n: Long")),
            )
        )
    )
    ran: list[int] = []

    @gate.tool
    def count_to(n: Annotated[int, pydantic.Field(ge=1, le=10)]) -> int:
        ran.append(n)
        return n

    refused = gate.call(Principal.agent("a"), "count_to", {"n": 0}, Session("s"))
    assert isinstance(refused, Refusal)
    assert refused.code == "invalid_arguments"
    assert gate.call(Principal.agent("a"), "count_to", {"n": 3}, Session("s")) == 3
    assert ran == [3]


def test_a_listed_schema_is_a_copy_that_cannot_change_validation(
    gate: Gate, billing: Principal, session: Session
) -> None:
    spec = next(t for t in gate.tools(billing) if t.name == "get_transactions")
    spec.parameters["properties"]["limit"]["type"] = "string"  # type: ignore[index]
    refused = gate.call(billing, "get_transactions", {"limit": "ten"}, session)
    assert isinstance(refused, Refusal)
    assert refused.code == "invalid_arguments"
