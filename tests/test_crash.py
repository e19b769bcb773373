"""G11 log before act: the decision is durable before the tool runs.

A worker process runs calls through a Gate over a SQLite audit file; its tool's
side effect is an fsynced line in another file. The harness kills it with
SIGKILL again and again, and after every kill reopens the store: the chain
verifies, nothing committed before is lost, and every side effect has a
committed "allow" decision for the same arguments. A decision with no outcome
is the visible "outcome unknown" state; they are counted.

Kill points are drawn from a seeded plan in steps, not in time (tests/zygote.py):
four of every five kills stop the child dead at a phase of a random step (before
the call, in the tool before its effect, after its effect, after the call); the
fifth lets it run on and kills it once it reports a random step done, wherever
it is by then (inside a transaction, say). The test means the same on any machine.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import TEST_KEY
from warded import (
    AuditEntry,
    AuditRecord,
    Checkpoint,
    Gate,
    MemoryStore,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    StoreError,
    verify,
)
from warded.canonical import args_digest, canonical_json
from warded.keys import read_key_file
from warded.store import Tx
from zygote import Progress, Zygote

ROOT = Path(__file__).resolve().parent.parent
BANKING = ROOT / "examples" / "banking" / "policies"
WORKER = Path(__file__).resolve().parent / "crash_worker.py"

SEED = 20260101
KILLS = 50
PHASES = ("call", "tool", "effect", "done", None)  # None: run on, kill once the step is done
MAX_STEP = 30


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    z = Zygote(WORKER, tmp_path / "worker.stderr")
    yield z
    z.close()


@dataclass(frozen=True)
class Inspection:
    checkpoint: Checkpoint
    records: int
    effects: int
    in_doubt: frozenset[str]  # calls with an allow decision and no outcome


def _digest(token: str, key: bytes) -> str:
    return args_digest(canonical_json({"path": token}), key)


def inspect_after_crash(db: Path, effects: Path, before: Checkpoint | None) -> Inspection:
    """Reopen the store and check G11 against the side-effect file; fail with the reason."""
    store = SQLiteStore(db)
    try:
        records = list(store.records())
        checkpoint = store.checkpoint()
    finally:
        store.close()
    result = verify(records, before)
    assert result.ok, f"chain does not verify after a crash: {result}"
    return check_intents(records, effects, checkpoint, TEST_KEY)


def check_intents(
    records: Sequence[AuditRecord], effects: Path, cp: Checkpoint, key: bytes
) -> Inspection:
    bodies = [r.body for r in records]
    allowed = {
        b["args_digest"]: b
        for b in bodies
        if b["kind"] == "decision" and b["decision"] == "allow" and b["mode"] == "enforce"
    }
    text = effects.read_text() if effects.exists() else ""
    tokens = text.split("\n")
    assert tokens[-1] == "", "a side-effect line was torn"
    tokens = tokens[:-1]
    for token in tokens:
        intent = allowed.get(_digest(token, key))
        assert intent is not None, f"side effect {token!r} has no committed allow decision"
        assert intent["args"] == {"path": token}
    outcomes = [b for b in bodies if b["kind"] == "outcome"]
    decided = {b["call"] for b in allowed.values()}
    assert {b["call"] for b in outcomes} <= decided, "an outcome without its decision"
    done = {b["args_digest"] for b in outcomes if b["outcome"] == "ok"}
    effected = {_digest(t, key) for t in tokens}
    assert done <= effected, "an ok outcome whose side effect is missing"
    in_doubt = frozenset(decided - {b["call"] for b in outcomes})
    return Inspection(cp, len(records), len(tokens), in_doubt)


@pytest.mark.requirement("G11")
def test_kill_9_at_random_points_never_leaves_a_side_effect_without_a_committed_decision(
    zygote: Zygote, tmp_path: Path, record_property: Any
) -> None:
    db, effects = tmp_path / "audit.db", tmp_path / "effects.log"
    progress = Progress(tmp_path / "progress")
    rng = random.Random(SEED)
    checkpoint: Checkpoint | None = None
    in_doubt: set[str] = set()
    started = time.monotonic()

    for run in range(KILLS):
        phase = PHASES[run % len(PHASES)]
        step = rng.randrange(MAX_STEP)
        if phase in ("tool", "effect") and step % 7 == 3:
            step += 1  # support-bot's calls (every seventh) are refused: no tool phases
        before = effects.read_text().count("\n") if effects.exists() else 0
        pid = zygote.go(run, db, effects, progress=progress, pause=phase and (step, phase))
        progress.wait_for(f"{run} paused" if phase else f"{run} {step} done")
        os.kill(pid, signal.SIGKILL)
        assert zygote.reap(pid) == {"signal": signal.SIGKILL}, zygote.stderr()

        seen = inspect_after_crash(db, effects, checkpoint)
        assert seen.in_doubt >= in_doubt, "an in-doubt call lost its decision"
        new = seen.in_doubt - in_doubt
        assert len(new) <= 1, "one crash leaves at most one call in doubt"
        if phase in ("tool", "effect"):  # killed between its decision and its outcome
            assert len(new) == 1
            refused = (step + 3) // 7  # steps 3, 10, 17, ... before this one
            assert seen.effects == before + step - refused + (phase == "effect")
        elif phase is not None:
            assert not new
        checkpoint, in_doubt = seen.checkpoint, set(seen.in_doubt)
    progress.close()

    assert seen.effects > 0, "the harness never got going"
    assert len(seen.in_doubt) >= 2 * KILLS // len(PHASES)
    record_property("kills", KILLS)
    record_property("records", seen.records)
    record_property("side_effects", seen.effects)
    record_property("outcome_unknown", len(seen.in_doubt))
    print(
        f"\nkill -9 harness: seed {SEED}, {KILLS} kills in {time.monotonic() - started:.1f}s, "
        f"{seen.records} records, {seen.effects} side effects, "
        f"{len(seen.in_doubt)} calls with outcome unknown"
    )


@pytest.mark.requirement("G11")
@pytest.mark.parametrize(
    ("mode", "effects_expected"), [("die-before-effect", 0), ("die-after-effect", 1)]
)
def test_a_crash_while_the_tool_runs_leaves_a_visible_outcome_unknown(
    mode: str, effects_expected: int, zygote: Zygote, tmp_path: Path
) -> None:
    db, effects = tmp_path / "audit.db", tmp_path / "effects.log"

    pid = zygote.go(0, db, effects, mode)

    assert zygote.reap(pid) == {"signal": signal.SIGKILL}, zygote.stderr()
    seen = inspect_after_crash(db, effects, None)
    assert seen.effects == effects_expected
    assert len(seen.in_doubt) == 1
    assert seen.records == 1  # the decision, and nothing after it


@pytest.mark.requirement("G11")
def test_the_checker_flags_a_side_effect_without_a_committed_decision(tmp_path: Path) -> None:
    store = MemoryStore()
    entry = AuditEntry(
        kind="decision",
        call="c1",
        time=0.0,
        args_digest=_digest("0-0", TEST_KEY),
        args={"path": "0-0"},
        decision="allow",
    )
    store.append([entry])
    effects = tmp_path / "effects.log"
    effects.write_text("0-0\n")
    records = list(store.records())

    assert check_intents(records, effects, store.checkpoint(), TEST_KEY).in_doubt == {"c1"}
    effects.write_text("0-0\n0-1\n")
    with pytest.raises(AssertionError, match="no committed allow decision"):
        check_intents(records, effects, store.checkpoint(), TEST_KEY)


# -- deterministic, in process ------------------------------------------------


def _gate(store: Any, executed: list[str]) -> Gate:
    gate = Gate(PolicyBundle.from_directory(BANKING), store=store)

    @gate.tool(effect="external")
    def read_document(path: str) -> str:
        executed.append(path)
        if path == "fail":
            raise RuntimeError("tool failed")
        return "read"

    return gate


@pytest.mark.requirement("G11")
def test_the_decision_is_committed_to_disk_before_the_tool_runs(
    tmp_path: Path, billing: Principal, session: Session
) -> None:
    path = tmp_path / "audit.db"
    store = SQLiteStore(path)
    seen_by_tool: list[list[tuple[str, str]]] = []
    gate = Gate(PolicyBundle.from_directory(BANKING), store=store)

    @gate.tool(effect="external")
    def read_document(path: str) -> str:
        # Another connection sees only what is committed.
        other = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
        try:
            rows = other.execute("SELECT body FROM audit ORDER BY seq").fetchall()
        finally:
            other.close()
        bodies = [json.loads(r[0]) for r in rows]
        seen_by_tool.append([(b["kind"], b["args_digest"]) for b in bodies])
        return "read"

    try:
        assert gate.call(billing, "read_document", {"path": "a"}, session) == "read"
        bodies = [r.body for r in store.records()]
    finally:
        store.close()

    assert seen_by_tool == [[("decision", _digest("a", read_key_file(Path(f"{path}.key"))))]]
    assert [(b["kind"], b["decision"], b["outcome"]) for b in bodies] == [
        ("decision", "allow", None),
        ("outcome", None, "ok"),
    ]


class FailingStore(MemoryStore):
    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        raise StoreError("cannot write")


@pytest.mark.requirement("G11")
@pytest.mark.parametrize("fault", ["raising-store", "sqlite-query-only", "sqlite-closed"])
def test_when_the_decision_cannot_be_recorded_the_tool_is_not_called(
    fault: str, tmp_path: Path, billing: Principal, session: Session
) -> None:
    store: Any
    if fault == "raising-store":
        store = FailingStore()
    else:
        store = SQLiteStore(tmp_path / "audit.db")
        if fault == "sqlite-query-only":
            store.connection.execute("PRAGMA query_only = ON")
        else:
            store.close()
    executed: list[str] = []
    gate = _gate(store, executed)

    result = gate.call(billing, "read_document", {"path": "a"}, session)

    assert executed == []
    assert isinstance(result, Refusal)
    assert result.code == "unavailable"
    if fault == "sqlite-query-only":
        assert list(store.records()) == []
        store.close()


@pytest.mark.requirement("G11")
def test_the_outcome_is_recorded_after_the_tool_returns_or_raises(
    billing: Principal, session: Session
) -> None:
    store = MemoryStore()
    executed: list[str] = []
    gate = _gate(store, executed)

    gate.call(billing, "read_document", {"path": "ok"}, session)
    gate.call(billing, "read_document", {"path": "fail"}, session)

    bodies = [r.body for r in store.records()]
    assert executed == ["ok", "fail"]
    assert [(b["kind"], b["decision"] or b["outcome"]) for b in bodies] == [
        ("decision", "allow"),
        ("outcome", "ok"),
        ("decision", "allow"),
        ("outcome", "error"),
    ]
    assert bodies[0]["call"] == bodies[1]["call"] != bodies[2]["call"] == bodies[3]["call"]
