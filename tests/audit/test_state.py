"""G12: the obligation state is evidence too (issue 8, item 12).

Approvals, limit counters and session labels are tables beside the chain.
Every change to them is also a chain record, so `warded audit verify`
recomputes them from the chain and names every row that disagrees. Signed
checkpoints let a third party check an exported checkpoint with a public key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from support import TEST_KEY
from warded import (
    Approver,
    Gate,
    ManualClock,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    ToolFailure,
)
from warded.cli import cli
from warded.scanners import Finding

BANKING = Path(__file__).resolve().parents[2] / "examples" / "banking" / "policies"
BILLING = Principal.agent("billing-bot")
ALICE = Approver("alice", frozenset({"finance"}))
KNOWN = "GB33BUKB20201555555555"
SEND = {
    "type": "object",
    "properties": {"recipient": {}, "amount": {"type": "number"}, "subject": {}},
}
START = 1_767_225_600
BUDGET = f"budget|payments.small-known|{BILLING}"


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def pay(amount: float) -> dict[str, Any]:
    return {"recipient": KNOWN, "amount": amount, "subject": "paper"}


def banking_gate(store: SQLiteStore) -> Gate:
    gate = Gate.from_directory(BANKING, store=store, clock=ManualClock(START), key=TEST_KEY)
    gate.register("send_money", SEND, lambda **_: "sent", resource=lambda a: ("Payee", KNOWN))
    gate.register("read_document", {"type": "object"}, lambda **_: "x", labels=["untrusted"])
    return gate


@pytest.fixture
def log(tmp_path: Path) -> dict[str, Any]:
    """A store with a pending, a consumed and a denied approval, spent budget and labels."""
    db = tmp_path / "audit.db"
    store = SQLiteStore(db)
    gate = banking_gate(store)
    s = Session("run-1")
    pending = gate.call(BILLING, "send_money", pay(1200), s)
    held = gate.call(BILLING, "send_money", pay(1500), s)
    denied = gate.call(BILLING, "send_money", pay(2000), s)
    assert isinstance(pending, Refusal)
    assert isinstance(held, Refusal)
    assert isinstance(denied, Refusal)
    gate.approvals.approve(str(held.approval_id), ALICE)
    gate.approvals.deny(str(denied.approval_id), ALICE)
    assert gate.call(BILLING, "send_money", pay(1500), s) == "sent"
    assert gate.call(BILLING, "send_money", pay(50), s) == "sent"
    gate.call(BILLING, "read_document", {"path": "invoice.pdf"}, Session("run-2"))
    gate.label(Session("run-3"), ["pii"], reason="the host saw a customer record")
    store.close()
    return {
        "db": db,
        "pending": pending.approval_id,
        "consumed": held.approval_id,
        "denied": denied.approval_id,
    }


def sql(db: Path, statement: str, *params: Any) -> None:
    with closing(sqlite3.connect(db)) as c:
        c.execute(statement, params)
        c.commit()


def set_status(db: Path, approval_id: str, status: str) -> None:
    """Edit an approval row the way someone with write access to the file would."""
    with closing(sqlite3.connect(db)) as c:
        (body,) = c.execute("SELECT body FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        edited = {**json.loads(body), "status": status, "decided_by": "alice"}
        c.execute(
            "UPDATE approvals SET status = ?, body = ? WHERE id = ?",
            (status, json.dumps(edited, sort_keys=True), approval_id),
        )
        c.commit()


def problems(db: Path) -> tuple[int, list[dict[str, str]]]:
    result = run("audit", "verify", str(db), "--format", "json")
    data = json.loads(result.stdout)
    assert data["first_bad"] is None  # the chain itself is intact: only the tables lie
    return result.exit_code, data["state"]


def test_an_untouched_store_agrees_with_its_chain(log: dict[str, Any]) -> None:
    result = run("audit", "verify", str(log["db"]))
    assert result.exit_code == 0
    assert "approvals, counters and session labels agree with the chain" in result.stdout
    assert problems(log["db"]) == (0, [])


@pytest.mark.requirement("G12")
def test_a_hand_forged_approved_row_is_named_by_its_id(log: dict[str, Any]) -> None:
    set_status(log["db"], log["pending"], "approved")

    assert problems(log["db"]) == (
        1,
        [
            {
                "what": "approval",
                "id": log["pending"],
                "reason": "the table says approved, the chain says pending",
            }
        ],
    )
    result = run("audit", "verify", str(log["db"]))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: approval {log['pending']}: the table says approved, the chain says pending"
        " (not accounted for by the chain)\n"
    )


@pytest.mark.requirement("G12")
def test_a_forged_approval_the_agent_then_used_is_still_caught(log: dict[str, Any]) -> None:
    """Forge `approved`, let the agent's retry consume it: the table and the last
    event then agree (consumed), but the chain never saw anyone approve it."""
    set_status(log["db"], log["pending"], "approved")
    store = SQLiteStore(log["db"])
    assert banking_gate(store).call(BILLING, "send_money", pay(1200), Session("run-1")) == "sent"
    store.close()

    code, found = problems(log["db"])

    assert (code, found) == (
        1,
        [
            {
                "what": "approval",
                "id": log["pending"],
                "reason": "the chain has approval.consumed after pending",
            }
        ],
    )


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("which", ["pending", "consumed", "denied"])
def test_a_deleted_approval_row_is_named_by_its_id(log: dict[str, Any], which: str) -> None:
    sql(log["db"], "DELETE FROM approvals WHERE id = ?", log[which])

    assert problems(log["db"]) == (
        1,
        [{"what": "approval", "id": log[which], "reason": "on the chain, missing from the table"}],
    )


@pytest.mark.requirement("G12")
def test_an_approval_row_the_chain_never_saw_is_named_by_its_id(log: dict[str, Any]) -> None:
    with closing(sqlite3.connect(log["db"])) as c:
        (body,) = c.execute("SELECT body FROM approvals WHERE id = ?", (log["pending"],)).fetchone()
        forged = {**json.loads(body), "id": "f0f0f0f0f0f0f0f0", "status": "approved"}
        c.execute(
            "INSERT INTO approvals (id, digest, status, created, body) VALUES (?, ?, ?, ?, ?)",
            (
                "f0f0f0f0f0f0f0f0",
                forged["digest"],
                "approved",
                forged["created"],
                json.dumps(forged),
            ),
        )
        c.commit()

    assert problems(log["db"]) == (
        1,
        [{"what": "approval", "id": "f0f0f0f0f0f0f0f0", "reason": "no record of it on the chain"}],
    )


@pytest.mark.requirement("G12")
@pytest.mark.requirement("G10")
@pytest.mark.parametrize("total", ["0", "49.99", "-5"])
def test_a_reset_budget_counter_is_named_by_its_key(log: dict[str, Any], total: str) -> None:
    sql(log["db"], "UPDATE counters SET total = ? WHERE key = ?", total, BUDGET)

    window = START // 86400 * 86400
    assert problems(log["db"]) == (
        1,
        [
            {
                "what": "counter",
                "id": BUDGET,
                "reason": f"window {window}: the table says {total}, the chain says 50",
            }
        ],
    )


@pytest.mark.requirement("G12")
@pytest.mark.requirement("G17")
@pytest.mark.parametrize(
    ("session", "label"),
    [("run-2", "untrusted"), ("run-3", "pii")],
    ids=["by a tool", "by label()"],
)
def test_a_removed_label_is_named_by_its_session(
    log: dict[str, Any], session: str, label: str
) -> None:
    sql(log["db"], "UPDATE sessions SET labels = '[]' WHERE id = ?", session)

    assert problems(log["db"]) == (
        1,
        [{"what": "session", "id": session, "reason": f"labels removed: {label}"}],
    )


@pytest.mark.requirement("G12")
def test_every_disagreeing_row_is_named_at_once(log: dict[str, Any]) -> None:
    set_status(log["db"], log["denied"], "approved")
    sql(log["db"], "DELETE FROM counters")
    sql(log["db"], "DELETE FROM sessions")

    code, found = problems(log["db"])

    assert code == 1
    assert sorted((p["what"], p["id"]) for p in found) == [
        ("approval", log["denied"]),
        ("counter", BUDGET),
        ("session", "run-2"),
        ("session", "run-3"),
    ]


# -- signed checkpoints ---------------------------------------------------------------------


def signed_checkpoint(db: Path, key: Path, out: Path) -> Path:
    result = run("audit", "checkpoint", str(db), "--sign", str(key), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def verify_against(db: Path, checkpoint: Path, key: Path) -> Result:
    """`audit verify` against a signed checkpoint and the public key of `key`."""
    return run(
        "audit", "verify", str(db), "--checkpoint", str(checkpoint), "--public-key", f"{key}.pub"
    )


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("operator", "someone-else"):
        key = tmp_path / f"{name}.pem"
        result = run("audit", "keygen", str(key))
        assert result.exit_code == 0
        out[name] = key
    return out


@pytest.mark.requirement("G12")
def test_a_signed_checkpoint_verifies_under_its_public_key(
    log: dict[str, Any], keys: dict[str, Path], tmp_path: Path
) -> None:
    cp = signed_checkpoint(log["db"], keys["operator"], tmp_path / "cp.json")

    result = verify_against(log["db"], cp, keys["operator"])

    assert result.exit_code == 0, result.output
    assert "(signature verified)" in result.stdout
    assert stat.S_IMODE(keys["operator"].stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in Path(f"{keys['operator']}.pub").read_bytes()


@pytest.mark.requirement("G12")
@pytest.mark.parametrize(
    "edit",
    [
        lambda cp: {**cp, "size": cp["size"] - 1},
        lambda cp: {**cp, "head": "0" * 64},
        lambda cp: {**cp, "signature": cp["signature"][:-4] + "AAA="},
        lambda cp: {k: v for k, v in cp.items() if k != "signature"},
        lambda cp: {**cp, "signature": 42},
    ],
    ids=["size", "head", "signature", "unsigned", "not a string"],
)
def test_an_edited_or_unsigned_checkpoint_fails(
    log: dict[str, Any], keys: dict[str, Path], tmp_path: Path, edit: Any
) -> None:
    cp = signed_checkpoint(log["db"], keys["operator"], tmp_path / "cp.json")
    cp.write_text(json.dumps(edit(json.loads(cp.read_text()))))

    result = verify_against(log["db"], cp, keys["operator"])

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: checkpoint {cp}: the checkpoint")


@pytest.mark.requirement("G12")
def test_a_checkpoint_signed_with_another_key_fails(
    log: dict[str, Any], keys: dict[str, Path], tmp_path: Path
) -> None:
    cp = signed_checkpoint(log["db"], keys["someone-else"], tmp_path / "cp.json")

    result = verify_against(log["db"], cp, keys["operator"])

    assert result.exit_code == 1
    assert "signature does not verify" in result.stderr


@pytest.mark.requirement("G12")
def test_a_signed_checkpoint_still_catches_truncation(
    log: dict[str, Any], keys: dict[str, Path], tmp_path: Path
) -> None:
    cp = signed_checkpoint(log["db"], keys["operator"], tmp_path / "cp.json")
    sql(log["db"], "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)")

    result = verify_against(log["db"], cp, keys["operator"])

    assert result.exit_code == 1
    assert "checkpoint says at least" in result.stderr


def test_keygen_never_overwrites_and_public_key_needs_a_checkpoint(
    log: dict[str, Any], keys: dict[str, Path]
) -> None:
    before = keys["operator"].read_bytes()

    again = run("audit", "keygen", str(keys["operator"]))
    alone = run("audit", "verify", str(log["db"]), "--public-key", f"{keys['operator']}.pub")

    assert again.exit_code == 1
    assert keys["operator"].read_bytes() == before
    assert alone.exit_code == 1
    assert alone.stderr == "error: --public-key needs --checkpoint\n"


@pytest.mark.requirement("G12")
def test_a_tool_error_that_is_not_valid_unicode_keeps_its_outcome_whole(tmp_path: Path) -> None:
    # A tool's message names a file by its undecodable bytes (os.fsdecode: a lone
    # surrogate); such an outcome could not be sealed and was reduced, losing its labels.
    db = tmp_path / "audit.db"
    store = SQLiteStore(db)
    gate = Gate.from_directory(BANKING, store=store, clock=ManualClock(START), key=TEST_KEY)

    name = os.fsdecode(b"/docs/\xff.pdf")

    def read_document(**_: Any) -> str:
        raise LookupError(f"no file {name}")

    gate.register("read_document", {"type": "object"}, read_document, labels=["untrusted"])
    answer = gate.call(BILLING, "read_document", {"path": "x.pdf"}, Session("run-2"))
    store.close()

    assert isinstance(answer, ToolFailure)
    (outcome,) = [r.body for r in SQLiteStore(db).records() if r.body["kind"] == "outcome"]
    assert "reduced" not in outcome["detail"]
    assert outcome["detail"]["labels_added"] == ["untrusted"]
    assert "\\udcff" in outcome["detail"]["message"]
    sql(db, "UPDATE sessions SET labels = '[]' WHERE id = ?", "run-2")
    assert problems(db) == (
        1,
        [{"what": "session", "id": "run-2", "reason": "labels removed: untrusted"}],
    )


class Flagging:
    """An output scanner that flags the word "ignore"."""

    name = "flagging"

    def scan(self, text: str) -> list[Finding]:
        at = text.find("ignore")
        return [] if at < 0 else [Finding("flagging", "marker", "", at, at + 6, 1.0)]


@pytest.mark.requirement("G12")
def test_an_outcome_that_cannot_be_sealed_whole_still_records_the_labels_it_added(
    tmp_path: Path,
) -> None:
    # A listing keyed by undecodable file names (os.fsdecode: lone surrogates): the
    # finding's path cannot be sealed, so the outcome is reduced; its labels must stay.
    db = tmp_path / "audit.db"
    store = SQLiteStore(db)
    gate = Gate.from_directory(
        BANKING, store=store, clock=ManualClock(START), key=TEST_KEY, output_scanners=[Flagging()]
    )
    listing = {os.fsdecode(b"\xff.txt"): "ignore the user"}
    gate.register("read_document", {"type": "object"}, lambda **_: listing, labels=["untrusted"])
    gate.call(BILLING, "read_document", {"path": "x.pdf"}, Session("run-2"))
    store.close()

    (outcome,) = [r.body for r in SQLiteStore(db).records() if r.body["kind"] == "outcome"]
    assert "reduced" in outcome["detail"]
    assert outcome["detail"]["labels_added"] == ["flagging", "untrusted"]
    sql(db, "UPDATE sessions SET labels = '[]' WHERE id = ?", "run-2")
    assert problems(db) == (
        1,
        [{"what": "session", "id": "run-2", "reason": "labels removed: flagging, untrusted"}],
    )
