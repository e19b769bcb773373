"""`warded diff`, `warded replay` and `warded audit shadow` on bundle pairs whose
differences are known."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from warded import Gate, PolicyBundle, Principal, Session, SQLiteStore
from warded.cli import cli
from warded.governance.diff import changes, flips

KNOWN = "GB33BUKB20201555555555"


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def lowered(tmp_path: Path, banking_dir: Path) -> Path:
    """The banking bundle with the approval threshold lowered from 100.00 to 50.00."""
    new = tmp_path / "lowered"
    shutil.copytree(banking_dir, new)
    payments = new / "payments.cedar"
    payments.write_text(payments.read_text().replace('decimal("100.0")', 'decimal("50.0")'))
    return new


@pytest.fixture
def widened(tmp_path: Path, banking_dir: Path) -> Path:
    """The banking bundle where the support agent may also read documents."""
    new = tmp_path / "widened"
    shutil.copytree(banking_dir, new)
    reads = new / "reads.cedar"
    reads.write_text(
        reads.read_text().replace(
            'permit (principal in Team::"billing", action == Action::"read_document", resource);',
            'permit (principal, action == Action::"read_document", resource);',
        )
    )
    return new


@pytest.fixture
def any_payee(tmp_path: Path, banking_dir: Path) -> Path:
    """The banking bundle where small payments may go to any payee, not only known ones."""
    new = tmp_path / "any-payee"
    shutil.copytree(banking_dir, new)
    payments = new / "payments.cedar"
    text = payments.read_text()
    first = text.index('resource in PayeeList::"known"')
    payments.write_text(
        text[:first] + "resource" + text[first + len('resource in PayeeList::"known"') :]
    )
    return new


def test_the_same_bundle_changes_nothing(banking_dir: Path) -> None:
    bundle = PolicyBundle.from_directory(banking_dir)
    assert changes(bundle, bundle) == []
    tried, found = flips(bundle, bundle)
    assert tried > 0
    assert found == []


def test_a_lowered_threshold_is_stated_and_its_boundary_flips(
    banking_dir: Path, lowered: Path
) -> None:
    old, new = PolicyBundle.from_directory(banking_dir), PolicyBundle.from_directory(lowered)
    stated = changes(old, new)
    assert {(s["principal"], s["tool"], s["kind"], s["text"]) for s in stated} == {
        ('Agent::"billing-bot"', "send_money", "changed", "permit payments.small-known changed"),
        ('Agent::"billing-bot"', "send_money", "changed", "permit payments.large-known changed"),
    }
    small = next(s for s in stated if "small" in s["text"])
    assert "less than 100.0" in small["before"]
    assert "less than 50.0" in small["after"]
    _, found = flips(old, new)
    assert found
    assert {(f.principal, f.tool, f.before, f.after) for f in found} == {
        ('Agent::"billing-bot"', "send_money", "allow", "allow after approval")
    }
    amounts = {f.args["amount"] for f in found}
    assert 50.0 in amounts  # the new boundary itself
    assert all(50.0 <= a < 100.0 for a in amounts)
    assert all(f.resource["id"] != "(other)" for f in found)


def test_diff_command_prints_gains_and_example_requests(banking_dir: Path, widened: Path) -> None:
    result = run("diff", str(banking_dir), str(widened))
    assert result.exit_code == 0, result.output
    assert "gained   read_document: the tool is now available" in result.stdout
    assert 'Agent::"support-bot" read_document: unknown_tool → allow' in result.stdout
    data = json.loads(run("diff", str(banking_dir), str(widened), "--format", "json").stdout)
    assert any(f["principal"] == 'Agent::"support-bot"' for f in data["flips"])
    assert data["requests_tried"] > 0


def _traffic(db: Path, bundle: Path, shadow: Path | None = None) -> None:
    gate = Gate.from_directory(bundle, store=SQLiteStore(db))
    if shadow is not None:
        gate.shadow(shadow)
    gate.register("read_document", {"type": "object"}, lambda **_: "text")
    gate.register(
        "send_money",
        {"type": "object", "properties": {"amount": {"type": "number"}}},
        lambda **_: "sent",
        resource=lambda a: ("Payee", a["recipient"]),
    )
    for who in ("billing-bot", "support-bot"):
        gate.call(Principal.agent(who), "read_document", {"path": "x"}, Session(f"s-{who}"))
    for amount in (10, 60, 150):
        args = {"recipient": KNOWN, "amount": amount, "subject": "x"}
        gate.call(Principal.agent("billing-bot"), "send_money", args, Session(f"p-{amount}"))
    stranger = {"recipient": "XX00STRANGER", "amount": 10, "subject": "x"}
    gate.call(Principal.agent("billing-bot"), "send_money", stranger, Session("stranger"))
    gate.store.close()


def test_replay_exits_1_on_a_widening_unless_allowed(
    tmp_path: Path, banking_dir: Path, any_payee: Path
) -> None:
    db = tmp_path / "a.db"
    _traffic(db, banking_dir)
    result = run("replay", str(db), "--bundle", str(any_payee))
    assert result.exit_code == 1, result.output
    assert "  deny → allow: 1" in result.stdout
    assert 'Agent::"billing-bot" send_money:' in result.stdout
    assert run("replay", str(db), "--bundle", str(any_payee), "--allow-widening").exit_code == 0
    data = json.loads(run("replay", str(db), "--bundle", str(any_payee), "--format", "json").stdout)
    (flip,) = data["flips"]
    assert (flip["principal"], flip["change"]) == ('Agent::"billing-bot"', "deny → allow")
    assert flip["after"] == "allow by payments.small-known"
    assert isinstance(flip["seq"], int)


def test_replay_of_a_narrowing_lists_the_new_approvals_and_exits_0(
    tmp_path: Path, banking_dir: Path, lowered: Path
) -> None:
    db = tmp_path / "a.db"
    _traffic(db, banking_dir)
    result = run("replay", str(db), "--bundle", str(lowered), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["changes"] == {"approval added": 1}  # the payment of 60.00
    assert run("replay", str(db), "--bundle", str(banking_dir)).exit_code == 0


def test_audit_shadow_lists_where_the_candidate_disagreed(
    tmp_path: Path, banking_dir: Path, any_payee: Path
) -> None:
    db = tmp_path / "a.db"
    _traffic(db, banking_dir, shadow=any_payee)
    data = json.loads(run("audit", "shadow", str(db), "--format", "json").stdout)
    assert data["shadow_decisions"] == 5  # the hidden tool's call never reaches an engine
    (d,) = data["disagreements"]
    assert (d["principal"], d["tool"], d["live"], d["shadow"]) == (
        'Agent::"billing-bot"',
        "send_money",
        "deny",
        "allow",
    )
    text = run("audit", "shadow", str(db)).stdout
    assert text.startswith("5 shadow decisions, 1 disagree with the live bundle")
