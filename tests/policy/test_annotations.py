"""Obligation annotations parse strictly: a malformed one rejects the bundle at its line."""

from __future__ import annotations

import json

import pytest

from warded import BundleError, BundleFiles, PolicyBundle

SCHEMA = (
    "type Session = { id: String, labels: Set<String>, calls: Long };\n"
    "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
    "entity Agent; entity Tool;\n"
    "action t appliesTo { principal: [Agent], resource: [Tool],\n"
    "  context: { args: {}, session: Session, now: Now } };\n"
)


def _load(annotation: str) -> PolicyBundle:
    rule = "permit (principal, action, resource);"
    text = f"{rule}\n{annotation}\n{rule}\n"
    return PolicyBundle.load(BundleFiles((("p.cedar", text),), ("schema.cedarschema", SCHEMA)))


@pytest.mark.requirement("G5")
@pytest.mark.parametrize(
    "annotation",
    ['@redact("")', '@redact("Secrets")', '@redact("secrets; pii")', '@redact("a b")'],
)
def test_a_malformed_redact_annotation_rejects_the_bundle_at_its_line(annotation: str) -> None:
    with pytest.raises(BundleError) as caught:
        _load(annotation)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("p.cedar", 2)


def test_redact_names_parse_into_a_sorted_tuple() -> None:
    bundle = _load('@id("x")\n@redact("pii, secrets,pii")')
    assert bundle.policies["x"].redact == ("pii", "secrets")
    assert "x" in bundle.obligated


# -- policies that cannot work are rejected at load (issue 8, item 13) ----------------

LEDGER = (
    "type Session = { id: String, labels: Set<String>, calls: Long };\n"
    "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
    "entity Agent; entity Tool;\n"
    "entity ApproverGroup; entity Approver in [ApproverGroup];\n"
    "action money;\n"
    "action pay in [money] appliesTo { principal: [Agent], resource: [Tool],\n"
    "  context: { args: { amount: decimal, memo: String }, session: Session, now: Now } };\n"
    "action tip in [money] appliesTo { principal: [Agent], resource: [Tool],\n"
    "  context: { args: { amount?: Long, memo: String }, session: Session, now: Now } };\n"
    "action note appliesTo { principal: [Agent], resource: [Tool],\n"
    "  context: { args: { memo: String, order: { total: Long } }, session: Session, now: Now } };\n"
)
APPROVERS = json.dumps(
    [
        {"uid": {"type": "ApproverGroup", "id": "finance"}, "attrs": {}, "parents": []},
        {"uid": {"type": "ApproverGroup", "id": "empty"}, "attrs": {}, "parents": []},
        {
            "uid": {"type": "Approver", "id": "alice"},
            "attrs": {},
            "parents": [{"type": "ApproverGroup", "id": "finance"}],
        },
    ]
)


def _ledger(policy: str) -> PolicyBundle:
    text = 'permit (principal, action == Action::"note", resource);\n\n' + policy
    files = BundleFiles(
        (("p.cedar", text),), ("schema.cedarschema", LEDGER), ("entities.json", APPROVERS)
    )
    return PolicyBundle.load(files)


def _rejected_at_line_3(policy: str) -> str:
    with pytest.raises(BundleError) as caught:
        _ledger(policy)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("p.cedar", 3)
    return problem.message


@pytest.mark.requirement("G5")
@pytest.mark.parametrize(
    ("annotation", "meant"),
    [
        ('@aproval("finance")', "approval"),
        ('@approvals("finance")', "approval"),
        ('@Approval("finance")', "approval"),
        ('@budgett("args.amount 5/day")', "budget"),
        ('@bugdet("args.amount 5/day")', "budget"),
        ('@rates("5/day")', "rate"),
        ('@Rate("5/day")', "rate"),
        ('@redcat("pii")', "redact"),
        ('@descripton("x")', "description"),
        ('@ID("x")', "id"),
        ('@ownr("x")', "owner"),
    ],
)
def test_an_annotation_that_looks_like_wardeds_but_is_misspelt_rejects_the_bundle(
    annotation: str, meant: str
) -> None:
    message = _rejected_at_line_3(f'@id("p")\n{annotation}\npermit (principal, action, resource);')
    assert f"@{meant}?" in message


@pytest.mark.parametrize("annotation", ['@ticket("X-1")', '@reviewer("x")', '@idea("x")'])
def test_annotations_of_ones_own_that_look_like_none_of_wardeds_are_kept(annotation: str) -> None:
    bundle = _ledger(f'@id("p")\n{annotation}\npermit (principal, action, resource);')
    key = annotation[1 : annotation.index("(")]
    assert key in bundle.policies["p"].annotations


@pytest.mark.requirement("G5")
@pytest.mark.parametrize(
    ("budget", "scope", "wrong"),
    [
        ("args.amonut 500/day", 'action == Action::"pay"', "pay"),  # misspelt: every call fails
        ("args.memo 500/day", 'action == Action::"pay"', "pay"),  # a String
        ("args.order 5/day", 'action == Action::"note"', "note"),  # a record
        ("args.amount 500/day", 'action in Action::"money"', None),  # decimal and optional Long
        ("args.amount 500/day", "action", "note"),  # `note` has no amount
        ("args.order.total 5/day", 'action == Action::"note"', None),  # nested Long
    ],
)
def test_a_budget_must_name_a_numeric_argument_of_every_tool_the_policy_applies_to(
    budget: str, scope: str, wrong: str | None
) -> None:
    policy = f'@id("p")\n@budget("{budget}")\npermit (principal, {scope}, resource);'
    if wrong is None:
        assert _ledger(policy).policies["p"].budget is not None
        return
    message = _rejected_at_line_3(policy)
    assert f"not a numeric argument of {wrong} " in message
    assert "policy 'p'" in message


@pytest.mark.requirement("G5")
@pytest.mark.parametrize(
    ("group", "problem"),
    [
        ("finanse", 'there is no ApproverGroup::"finanse"'),
        ("empty", "no Approver is in group 'empty'"),
        ("alice", 'there is no ApproverGroup::"alice"'),  # an approver is not a group
    ],
)
def test_an_approval_group_must_exist_and_have_someone_who_can_approve(
    group: str, problem: str
) -> None:
    message = _rejected_at_line_3(
        f'@id("p")\n@approval("{group}")\npermit (principal, action, resource);'
    )
    assert problem in message


def test_an_approval_group_with_a_member_loads() -> None:
    bundle = _ledger('@id("p")\n@approval("finance")\npermit (principal, action, resource);')
    assert bundle.policies["p"].approval == "finance"


@pytest.mark.requirement("G5")
@pytest.mark.parametrize(
    "rate",
    [
        "0/minute",
        "20/minutes",
        "20",
        "20/fortnight",
        "-1/day",
        "1e3/day",
        "٢٠/minute",
        "20/minute per toll",
        "10000000000/day",
        "20 per minute",
    ],
)
def test_a_malformed_rate_rejects_the_bundle_at_its_line(rate: str) -> None:
    policy = f'@id("p")\n@rate("{rate}")\npermit (principal, action, resource);'
    message = _rejected_at_line_3(policy)
    assert "@rate must look like" in message


# -- a policy Cedar accepts but cannot turn into a tree (issue 8, item 14) --------------


@pytest.mark.requirement("G5")
@pytest.mark.parametrize(
    "call", ['decimal("1.0", "2.0")', "ip()", 'datetime("a", "b")', "context.args.memo.lessThan()"]
)
def test_an_extension_call_of_the_wrong_arity_is_refused_naming_the_policy(call: str) -> None:
    rule = f"permit (principal, action, resource) when {{ false && {call} }};"
    policy = f'@id("odd")\n@owner("x")\n{rule}'
    message = _rejected_at_line_3(policy)
    assert message.startswith("policy 'odd' cannot be read as a tree: function ")
    assert "expects" in message
