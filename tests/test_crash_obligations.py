"""G13 crash consistent: kill -9 while approvals are consumed and budgets reserved.

A worker process (tests/crash_obligations_worker.py) makes budgeted payments
and asks for, approves and consumes approvals against a SQLite file; the
harness kills it with SIGKILL again and again — at phases of random steps it
stops the child at, or wherever the child is once it reports a random step
done (tests/zygote.py: kill points in steps, never in time) — and after every
kill reopens the file and checks:

- the audit chain verifies, and nothing committed before is lost;
- an approval is consumed if and only if exactly one committed allow decision
  names it; every approval has the decision record that asked for it, and
  every approval that was granted has its `approval.approved` event naming
  the approver;
- each budget counter equals the sum of the amounts of its committed allow
  decisions, minus those whose outcome released them (error / not_run), and
  never exceeds its limit: no unaccounted spend;
- every side effect has a committed allow decision for the same arguments
  (a transfer's names its consumed approval), and no effect happened twice;
- calls decided but without an outcome ("in doubt") stay visible.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from support import TEST_KEY
from warded import (
    Approver,
    Checkpoint,
    Gate,
    ManualClock,
    PolicyBundle,
    Principal,
    Session,
    SQLiteStore,
    verify,
)
from warded.canonical import args_digest, canonical_json
from zygote import Progress, Zygote

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ROOT / "tests" / "obligations" / "bundles" / "ledger"
WORKER = Path(__file__).resolve().parent / "crash_obligations_worker.py"

SEED = 20260113
KILLS = 30
# (phase, the steps to draw from). Transfers are every fourth step, declined spends
# (no effect) at steps 2, 12, ...; within the first 12 steps every budget still has
# room, so each phase is reached for sure. None runs on and is killed once the step
# is done: late steps, so budgets run out on the way.
_EARLY = range(12)
PHASES: tuple[tuple[str | None, list[int]], ...] = (
    ("tool", [s for s in _EARLY if s % 4 != 3 and s % 5 != 2]),
    ("asked", [s for s in _EARLY if s % 4 == 3]),
    ("effect", [s for s in _EARLY if s % 4 == 3]),
    ("approved", [s for s in _EARLY if s % 4 == 3]),
    ("call", list(_EARLY)),
    (None, list(range(40, 60))),
)
BUNDLE = PolicyBundle.from_directory(LEDGER)


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    z = Zygote(WORKER, tmp_path / "worker.stderr")
    yield z
    z.close()


# -- the checker -----------------------------------------------------------------------


@dataclass(frozen=True)
class Inspection:
    checkpoint: Checkpoint
    records: int
    effects: Counter[str]  # tool -> side effects
    statuses: Counter[str]  # approval status -> count
    released: int  # allowed calls whose reservation was released
    refused_for_limits: int
    spent: dict[tuple[str, int], Decimal]
    in_doubt: frozenset[str]


def inspect_after_crash(db: Path, effects: Path, before: Checkpoint | None) -> Inspection:
    """Reopen the store and check G13 against it and the side-effect file."""
    store = SQLiteStore(db)
    try:
        records = list(store.records())
        checkpoint = store.checkpoint()
        with store.transaction() as tx:
            approvals = {a.id: a for a in tx.approvals()}
        counters = store.connection.execute("SELECT key, window, total FROM counters").fetchall()
    finally:
        store.close()
    result = verify(records, before)
    assert result.ok, f"chain does not verify after a crash: {result}"
    bodies = [r.body for r in records]
    decisions = [b for b in bodies if b["kind"] == "decision" and b["mode"] == "enforce"]
    allowed = [b for b in decisions if b["decision"] == "allow"]
    outcomes: dict[str, dict[str, Any]] = {}
    for b in bodies:
        if b["kind"] == "outcome":
            assert b["call"] not in outcomes, "two outcomes for one call"
            outcomes[b["call"]] = b
    events = [b["detail"] for b in bodies if b["kind"] == "event"]

    # approvals: consumed <=> exactly one committed allow decision names it
    consumers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in allowed:
        if "approval" in b["detail"]:
            consumers[b["detail"]["approval"]].append(b)
    for approval_id, named in consumers.items():
        assert len(named) == 1, f"approval {approval_id} ran {len(named)} calls"
        approval = approvals.get(approval_id)
        assert approval is not None, "a decision names an approval the store does not have"
        assert approval.status == "consumed", f"ran under {approval_id} but it is {approval.status}"
        assert named[0]["args_digest"] == approval.args_digest
        assert named[0]["detail"]["approved_by"] == "alice"
    asked = {b["detail"]["approval"] for b in decisions if b["code"] == "approval_required"}
    granted = {
        e["approval"]
        for e in events
        if e.get("event") == "approval.approved" and e.get("by") == "alice"
    }
    for a in approvals.values():
        assert a.id in asked, f"approval {a.id} exists without the decision record asking for it"
        if a.status == "consumed":
            assert a.id in consumers, f"approval {a.id} consumed without a committed decision"
        if a.status in ("approved", "consumed"):
            assert a.id in granted, f"approval {a.id} was granted without an audit event"

    # budgets: every counter is the committed, unreleased spend of its window
    expected: Counter[tuple[str, int]] = Counter()
    limits: dict[tuple[str, int], Decimal] = {}
    released = 0
    for b in allowed:
        outcome = outcomes.get(b["call"])
        if outcome is not None and outcome["outcome"] in ("error", "not_run"):
            released += 1
            continue
        for policy_id in b["policies"]:
            budget = BUNDLE.policies[policy_id].budget
            if budget is None:
                continue
            key = f"budget|{policy_id}|{b['principal']}"
            window = b["time_us"] // 1_000_000 // budget.period * budget.period
            expected[(key, window)] += Decimal(b["args"][budget.path[1]])
            limits[(key, window)] = budget.limit
    spent = {(k, w): Decimal(total) for k, w, total in counters if Decimal(total) != 0}
    assert spent == {k: v for k, v in expected.items() if v != 0}, "unaccounted spend"
    for key, total in spent.items():
        assert total <= limits[key], f"{key} is over its limit: {total}"

    # side effects: each has its committed allow decision, and none happened twice
    text = effects.read_text() if effects.exists() else ""
    assert text == "" or text.endswith("\n"), "a side-effect line was torn"
    lines = [json.loads(line) for line in text.splitlines()]
    by_intent = {(b["tool"], b["args_digest"]): b for b in allowed}
    seen: Counter[tuple[str, str]] = Counter()
    for line in lines:
        digest = args_digest(canonical_json(line["args"]), TEST_KEY)
        intent = by_intent.get((line["tool"], digest))
        assert intent is not None, f"side effect {line} has no committed allow decision"
        assert intent["args"] == line["args"]
        if line["tool"] == "transfer":
            assert approvals[intent["detail"]["approval"]].status == "consumed"
        seen[(line["tool"], digest)] += 1
    assert all(n == 1 for n in seen.values()), "a side effect happened twice"
    ok = {(b["tool"], b["args_digest"]) for b in outcomes.values() if b["outcome"] == "ok"}
    assert ok <= set(seen), "an ok outcome whose side effect is missing"
    assert set(outcomes) <= {b["call"] for b in allowed}, "an outcome without its decision"

    return Inspection(
        checkpoint=checkpoint,
        records=len(records),
        effects=Counter(line["tool"] for line in lines),
        statuses=Counter(a.status for a in approvals.values()),
        released=released,
        refused_for_limits=sum(1 for b in decisions if b["code"] == "limit_exceeded"),
        spent=spent,
        in_doubt=frozenset(b["call"] for b in allowed if b["call"] not in outcomes),
    )


# -- the harness ------------------------------------------------------------------------


@pytest.mark.requirement("G13")
def test_kill_9_at_random_points_leaves_approvals_and_budgets_consistent(
    zygote: Zygote, tmp_path: Path, record_property: Any
) -> None:
    db, effects = tmp_path / "store.db", tmp_path / "effects.log"
    SQLiteStore(db).close()
    progress = Progress(tmp_path / "progress")
    rng = random.Random(SEED)
    checkpoint: Checkpoint | None = None
    in_doubt: set[str] = set()
    started = time.monotonic()

    for run in range(KILLS):
        phase, steps = PHASES[run % len(PHASES)]
        step = rng.choice(steps)
        pid = zygote.go(run, db, effects, progress=progress, pause=phase and (step, phase))
        progress.wait_for(f"{run} paused" if phase else f"{run} {step} done")
        os.kill(pid, signal.SIGKILL)
        assert zygote.reap(pid) == {"signal": signal.SIGKILL}, zygote.stderr()

        seen = inspect_after_crash(db, effects, checkpoint)
        assert seen.in_doubt >= in_doubt, "an in-doubt call lost its decision"
        assert len(seen.in_doubt - in_doubt) <= 1, "one crash leaves at most one call in doubt"
        checkpoint, in_doubt = seen.checkpoint, set(seen.in_doubt)
    progress.close()

    elapsed = time.monotonic() - started
    assert seen.effects["spend"] > 0, "the harness never got going"
    assert seen.effects["transfer"] > 0, "no approval was ever consumed"
    assert seen.statuses["consumed"] >= seen.effects["transfer"]
    assert seen.released > 0, "no reservation was ever released"
    assert seen.refused_for_limits > 0, "no budget was ever exhausted"
    record_property("kills", KILLS)
    record_property("records", seen.records)
    record_property("approvals", dict(seen.statuses))
    print(
        f"\nkill -9 obligations harness: seed {SEED}, {KILLS} kills in {elapsed:.1f}s, "
        f"{seen.records} records, effects {dict(seen.effects)}, approvals "
        f"{dict(seen.statuses)}, {seen.released} released, {seen.refused_for_limits} refused "
        f"for limits, {len(seen.in_doubt)} in doubt"
    )


@pytest.mark.requirement("G13")
def test_a_crash_while_an_approved_tool_runs_keeps_the_approval_consumed_and_the_spend_counted(
    zygote: Zygote, tmp_path: Path
) -> None:
    db, effects = tmp_path / "store.db", tmp_path / "effects.log"

    pid = zygote.go(0, db, effects, "die-in-transfer")
    assert zygote.reap(pid) == {"signal": signal.SIGKILL}, zygote.stderr()
    crashed = inspect_after_crash(db, effects, None)

    assert crashed.statuses == {"consumed": 1}
    assert sum(crashed.effects.values()) == 0
    assert len(crashed.in_doubt) == 1
    ((key, _),) = crashed.spent
    assert key.startswith("budget|ledger.transfer|")

    # a restarted worker finishes what is open; the in-doubt call is not open and never reruns
    pid = zygote.go(1, db, effects, "resume")
    assert zygote.reap(pid) == {"signal": signal.SIGKILL}, zygote.stderr()
    after = inspect_after_crash(db, effects, crashed.checkpoint)

    assert after.in_doubt == crashed.in_doubt
    assert after.statuses == {"consumed": 1}
    assert sum(after.effects.values()) == 0
    assert after.spent == crashed.spent


def _ledger_gate(store: SQLiteStore) -> Gate:
    gate = Gate(BUNDLE, store=store, clock=ManualClock(), key=TEST_KEY)

    @gate.tool(effect="irreversible", atomic=True)
    def spend(memo: str, amount: int) -> str:
        return "spent"

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def transfer(recipient: str, amount: int, memo: str) -> str:
        return "sent"

    return gate


@pytest.mark.requirement("G13")
@pytest.mark.parametrize("damage", ["consumed-unlogged", "spend-unaccounted", "effect-unlogged"])
def test_the_checker_flags_each_inconsistency_it_looks_for(damage: str, tmp_path: Path) -> None:
    db, effects = tmp_path / "store.db", tmp_path / "effects.log"
    store = SQLiteStore(db)
    gate = _ledger_gate(store)
    ops, s = Principal.agent("ops-bot"), Session("s")
    alice = Approver("alice", frozenset({"finance"}))
    args = {"recipient": "GB33BUKB20201555555555", "amount": 300, "memo": "t"}
    gate.approvals.approve(gate.call(ops, "transfer", args, s).approval_id, alice)
    assert gate.call(ops, "transfer", args, s) == "sent"
    assert gate.call(ops, "spend", {"amount": 5, "memo": "s"}, s) == "spent"
    left_open = gate.call(ops, "transfer", {**args, "memo": "u"}, s).approval_id
    gate.approvals.approve(left_open, alice)
    effects.write_text(
        json.dumps({"tool": "transfer", "args": args})
        + "\n"
        + json.dumps({"tool": "spend", "args": {"amount": 5, "memo": "s"}})
        + "\n"
    )
    inspect_after_crash(db, effects, None)  # consistent so far

    if damage == "consumed-unlogged":
        with store.transaction() as tx:
            approval = tx.approval(left_open)
            assert approval is not None
            tx.put_approval(approval.with_status("consumed"))
        expected = "consumed without a committed decision"
    elif damage == "spend-unaccounted":
        store.connection.execute("UPDATE counters SET total = '6' WHERE total = '5'")
        expected = "unaccounted spend"
    else:
        with effects.open("a") as f:
            f.write(json.dumps({"tool": "spend", "args": {"amount": 7, "memo": "x"}}) + "\n")
        expected = "no committed allow decision"
    store.close()

    with pytest.raises(AssertionError, match=expected):
        inspect_after_crash(db, effects, None)
