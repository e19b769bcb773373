"""Replaying the audit log against the recorded bundle versions reproduces every decision."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import session_with
from warded import Gate, PolicyBundle, Principal, Session
from warded.replay import replay

KNOWN = "GB33BUKB20201555555555"


def _traffic(gate: Gate) -> None:
    billing, support = Principal.agent("billing-bot"), Principal.agent("support-bot")
    for labels in ((), ("untrusted",)):
        s = session_with(gate, labels)
        for amount in (-3, 0.5, 42.5, 99.9999, 100, 4999, 5000, 5000.5, 123456):
            for payee in (KNOWN, "DE89370400440532013000", "XX00UNKNOWN"):
                gate.call(
                    billing, "send_money", {"recipient": payee, "amount": amount, "subject": "s"}, s
                )
        for who in (billing, support):
            gate.call(who, "get_balance", {}, s)
            gate.call(who, "get_transactions", {"limit": 3}, s)
            gate.call(who, "read_document", {"path": "x"}, s)


@pytest.mark.requirement("G3")
def test_replaying_the_log_against_recorded_versions_reproduces_every_decision(
    gate: Gate, banking_dir: Path, tmp_path: Path
) -> None:
    first = gate.bundle
    _traffic(gate)
    changed = tmp_path / "b"
    shutil.copytree(banking_dir, changed)
    payments = changed / "payments.cedar"
    payments.write_text(payments.read_text().replace('decimal("100.0")', 'decimal("50.0")'))
    second = PolicyBundle.from_directory(changed)
    gate.reload(second)
    _traffic(gate)

    results = replay(gate.store.records(), {first.version: first, second.version: second})
    replayed = [r for r in results if r.status != "skipped"]
    assert len(replayed) > 100
    assert {r.status for r in replayed} == {"same"}, [r for r in replayed if r.status != "same"][:3]
    assert {(r.recorded[0], r.recorded[1]) for r in replayed} == {
        ("allow", False),
        ("allow", True),
        ("deny", False),
    }


@pytest.mark.requirement("G3")
def test_replay_against_a_candidate_bundle_shows_what_it_would_change(
    gate: Gate, banking_dir: Path, tmp_path: Path
) -> None:
    _traffic(gate)
    candidate_dir = tmp_path / "c"
    shutil.copytree(banking_dir, candidate_dir)
    payments = candidate_dir / "payments.cedar"
    payments.write_text(payments.read_text().replace('decimal("100.0")', 'decimal("50.0")'))
    candidate = PolicyBundle.from_directory(candidate_dir)
    results = replay(gate.store.records(), candidate)
    different = [r for r in results if r.status == "different"]
    # 99.9999 and 50 < x < 100 payments to known payees move from plain allow to approval
    assert different
    for r in different:
        assert r.recorded[:2] == ("allow", False)
        assert r.replayed is not None
        assert r.replayed[:2] == ("allow", True)


def test_records_of_unknown_versions_are_skipped_not_guessed(gate: Gate) -> None:
    _traffic(gate)
    results = replay(gate.store.records(), {})
    assert results
    assert {r.status for r in results} == {"skipped"}


@pytest.mark.parametrize(
    "p", [Principal.agent("a"), Principal("NS::Agent", 'we"ird::"id\n'), Principal.agent("")]
)
def test_principals_round_trip_through_their_text_form(p: Principal) -> None:
    assert Principal.parse(str(p)) == p


def test_replay_ignores_refusals_that_never_reached_the_engine(gate: Gate) -> None:
    s = Session("s")
    gate.call(Principal.agent("billing-bot"), "nope", {}, s)
    gate.call(Principal.agent("billing-bot"), "send_money", {"amount": "x"}, s)
    assert replay(gate.store.records(), gate.bundle) == []
