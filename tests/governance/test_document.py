"""The governance document (`warded explain`): golden files reviewed by hand, and
checks over every example bundle that each condition appears and nothing is invented."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cedarpy import pst
from click.testing import CliRunner

from warded import PolicyBundle
from warded.cli import cli
from warded.governance.conditions import cedar, conjuncts, plain
from warded.governance.document import agents, document

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
NOW = "1767225600"
EXAMPLES = [
    ROOT / "examples" / "banking" / "policies",
    *sorted(p for p in (ROOT / "examples" / "agentdojo").iterdir() if p.is_dir()),
    HERE / "bundles" / "ops",
]
GOLDEN = [
    ("banking.md", ROOT / "examples" / "banking" / "policies", "markdown"),
    ("ops.md", HERE / "bundles" / "ops", "markdown"),
    ("ops.html", HERE / "bundles" / "ops", "html"),
]


@pytest.mark.parametrize(("name", "bundle", "fmt"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_the_document_matches_its_hand_reviewed_golden_file(
    name: str, bundle: Path, fmt: str
) -> None:
    result = CliRunner().invoke(cli, ["explain", str(bundle), "--now", NOW, "--format", fmt])
    assert result.exit_code == 0, result.output
    assert result.stdout == (HERE / "golden" / name).read_text(encoding="utf-8")


def _literals(expr: Any) -> Iterator[str]:
    """Every constant a condition names, as the document must show it."""
    if isinstance(expr, pst.StringLit):
        yield expr.value
    elif isinstance(expr, pst.LongLit):
        yield str(expr.value)
    elif isinstance(expr, pst.EntityLit):
        yield expr.value.id
    elif hasattr(expr, "__dataclass_fields__"):
        for name in expr.__dataclass_fields__:
            child = getattr(expr, name)
            for c in child if isinstance(child, tuple) else (child,):
                yield from _literals(c)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_condition_of_every_applicable_policy_appears_and_nothing_is_invented(
    path: Path,
) -> None:
    bundle = PolicyBundle.from_directory(path)
    doc = document(bundle, now=0)
    assert doc["bundle_version"] == bundle.version
    assert {a["principal"] for a in doc["agents"]} == {str(p) for p in agents(bundle)}
    shown_somewhere: set[str] = set()
    for agent in doc["agents"]:
        for tool in agent["tools"]:
            for entry in tool["allowed_by"] + tool["forbidden_by"]:
                node = bundle.tree.static_policies[entry["id"]]  # invented ids fail here
                info = bundle.policies[entry["id"]]
                assert entry["effect"] == node.effect == info.effect
                assert (entry["description"], entry["owner"]) == (info.description, info.owner)
                expected = []
                for clause in node.clauses:
                    parts = (
                        list(conjuncts(clause.expr))
                        if isinstance(clause, pst.When)
                        else [clause.expr]
                    )
                    expected += [cedar(p) for p in parts]
                assert [c["cedar"] for c in entry["conditions"]] == expected
                words = " ".join(c["text"] for c in entry["conditions"])
                for literal in (lit for c in node.clauses for lit in _literals(c.expr)):
                    # a provenance source "tool:<name>" reads "the output of tool <name>"
                    shown = (
                        f"the output of tool {literal[5:]}"
                        if literal.startswith("tool:")
                        else literal
                    )
                    assert shown in words, (entry["id"], literal, words)
                shown_somewhere.add(entry["id"])
    permits = {i.id for i in bundle.policies.values() if i.effect == "permit"}
    used = {p for p in permits if any(True for _ in _slices_using(bundle, p))}
    assert used <= shown_somewhere


def _slices_using(bundle: PolicyBundle, pid: str) -> Iterator[str]:
    doc = document(bundle, now=0)
    for agent in doc["agents"]:
        for tool in agent["tools"]:
            if any(p["id"] == pid for p in tool["allowed_by"]):
                yield tool["tool"]


def test_a_budget_shared_by_two_tools_is_listed_once_with_both() -> None:
    doc = document(PolicyBundle.from_directory(HERE / "bundles" / "ops"), now=0)
    (agent,) = doc["agents"]
    budgets = [lim for lim in agent["limits"] if lim["kind"] == "budget"]
    assert budgets == [
        {
            "id": "budget spend.shared",
            "kind": "budget",
            "policy": "spend.shared",
            "limit": "args.amount 1000/day",
            "text": budgets[0]["text"],
            "tools": ["buy", "refund"],
        }
    ]
    (approval,) = agent["approvals"]
    assert (approval["group"], approval["approvers"]) == ("sre-leads", ["dana", "eve"])


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ('context.provenance.recipient.contains("untrusted")',
         "the value of argument recipient came from untrusted content"),
        ('!context.provenance.recipient.contains("untrusted")',
         "the value of argument recipient did not come from untrusted content"),
        ('context.provenance.to.contains("user")',
         "the value of argument to came from the user's request"),
        ('context.provenance.recipient.contains("tool:read_inbox")',
         "the value of argument recipient came from the output of tool read_inbox"),
        ('context.provenance.recipient.containsAny(["user", "approved"])',
         "the value of argument recipient came from the user's request or a value a person "
         "approved"),
        ('!context.provenance.to.containsAny(["user", "approved", "ops"])',
         "the value of argument to came from none of the user's request, a value a person "
         'approved, the source or label "ops"'),
        ('context.provenance.to.containsAll(["user", "tool:crm"])',
         "the value of argument to came from all of the user's request, the output of tool crm"),
        ("context.provenance.recipient.isEmpty()",
         "the value of argument recipient came from no known source (the model made it up)"),
        ("!context.provenance.recipient.isEmpty()",
         "the value of argument recipient came from at least one known source"),
        ('!context.session.labels.contains("untrusted")',
         'the session is not labelled "untrusted"'),
        ("context.args has memo", "argument memo is given"),
        ("context.session.calls > 20",
         "the number of calls made in the session so far is more than 20"),
        ('context.args.amount.lessThan(decimal("12.5"))', "argument amount is less than 12.5"),
        ('resource in PayeeList::"known"', 'the resource is in PayeeList::"known"'),
        ("context.scan.pii", "the input scanners found personal data in the arguments"),
        ("!context.scan.pii", "the input scanners found no personal data in the arguments"),
        ("context.args.n * 3 > 9", "`(context.args.n * 3) > 9`"),
    ],
)  # fmt: skip
def test_conditions_read_as_words_or_as_cedar(condition: str, words: str) -> None:
    from cedarpy import policies_to_pst

    tree = policies_to_pst(f"permit (principal, action, resource) when {{ {condition} }};")
    (node,) = tree.static_policies.values()
    assert plain(node.clauses[0].expr) == words


def test_json_output_is_the_document_as_data(banking_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["explain", str(banking_dir), "-p", "billing-bot",
                                      "--format", "json", "--now", NOW])  # fmt: skip
    data = json.loads(result.stdout)
    assert data["generated"] == "2026-01-01T00:00:00Z"
    (agent,) = data["agents"]
    send = next(t for t in agent["tools"] if t["tool"] == "send_money")
    small = next(p for p in send["allowed_by"] if p["id"] == "payments.small-known")
    assert small["conditions"] == [
        {
            "kind": "when",
            "text": "argument amount is less than 100.0",
            "cedar": 'context.args.amount.lessThan(decimal("100.0"))',
        }
    ]
    assert Decimal("100.0") == Decimal(small["conditions"][0]["text"].split()[-1])
