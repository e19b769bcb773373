"""G8, G9, G10 under interleaving: threads sharing a gate, and processes sharing a file.

The multi-process races use long-lived workers (tests/obligations/race_worker.py),
each with its own Gate over the same SQLite file and bundle. A round arms every
worker with its calls, then releases them together by writing "go" down every
pipe. Side effects are lines the tools append to a file: the count the
guarantees are checked against, whatever the answers say.

Real parallelism only samples interleavings, so one test also enumerates them
at the grain that matters: one call is stopped before each of its store
transactions in turn while a second, identical call runs from start to end.
"""

from __future__ import annotations

import json
import os
import select
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from warded import (
    Approval,
    ApprovalError,
    Approver,
    Gate,
    ManualClock,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    Store,
    StoreError,
    ToolFailure,
    verify,
)

HERE = Path(__file__).resolve().parent
BANKING = HERE.parent.parent / "examples" / "banking" / "policies"
LEDGER = HERE / "bundles" / "ledger"
WORKER = HERE / "race_worker.py"
KNOWN = "GB33BUKB20201555555555"
PAY = {"recipient": KNOWN, "amount": 1200, "subject": "invoice 7"}
ALICE = Approver("alice", frozenset({"finance"}))
NOW = 1_767_225_600.0
PROCESSES = 6
ROUNDS = 5
REPLY_BOUND = 30.0
BARRIER_BOUND = 10.0
JOIN_BOUND = 30.0


# -- worker processes ----------------------------------------------------------------


class Worker:
    def __init__(self, stderr: Path) -> None:
        self._stderr_path = stderr
        self._stderr = stderr.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        self._buf = b""

    def send(self, **message: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        out = self.proc.stdout.fileno()
        deadline = time.monotonic() + REPLY_BOUND
        while b"\n" not in self._buf:
            ready, _, _ = select.select([out], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                pytest.fail(f"race worker did not answer in {REPLY_BOUND}s\n{self.stderr()}")
            chunk = os.read(out, 65536)
            if not chunk:
                pytest.fail(f"race worker exited\n{self.stderr()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stderr(self) -> str:
        self._stderr.flush()
        return self._stderr_path.read_text(errors="replace")

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=REPLY_BOUND)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()
            self.proc.wait(timeout=REPLY_BOUND)
        self.proc.stdout.close()
        self._stderr.close()


class Pool:
    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    def round(
        self, db: Path, effects: Path, bundle: str, calls: list[list[dict[str, Any]]]
    ) -> list[list[dict[str, Any]]]:
        """Arm worker i with calls[i], release them all at once, return their results."""
        assert len(calls) == len(self.workers)
        if not db.exists():
            SQLiteStore(db).close()  # workers opening a new file together can fail: see the end
        for worker, mine in zip(self.workers, calls, strict=True):
            worker.send(
                cmd="arm", db=str(db), effects=str(effects), bundle=bundle, now=NOW, calls=mine
            )
        armed = [worker.receive() for worker in self.workers]
        assert all("armed" in a for a in armed), armed
        for worker in self.workers:  # the barrier: every worker is blocked reading this
            worker.send(cmd="go")
        return [worker.receive()["results"] for worker in self.workers]


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    logs = tmp_path_factory.mktemp("race-workers")
    workers = [Worker(logs / f"worker-{i}.stderr") for i in range(PROCESSES)]
    try:
        for worker in workers:
            assert "started" in worker.receive()
        yield Pool(workers)
    finally:
        for worker in workers:
            worker.close()


def side_effects(effects: Path) -> list[dict[str, Any]]:
    if not effects.exists():
        return []
    return [json.loads(line) for line in effects.read_text().splitlines()]


def call(
    principal: str, tool: str, args: dict[str, Any], session: str, **kw: Any
) -> dict[str, Any]:
    return {"principal": principal, "tool": tool, "args": args, "session": session, **kw}


def flat(results: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for rs in results for r in rs]


# -- G8: one approval, many processes -----------------------------------------------


@pytest.mark.requirement("G8")
@pytest.mark.requirement("G9")
def test_processes_racing_to_consume_one_approval_run_it_exactly_once_every_time(
    pool: Pool, tmp_path: Path
) -> None:
    bundle = PolicyBundle.from_directory(BANKING)
    for r in range(ROUNDS):
        db, effects = tmp_path / f"round-{r}.db", tmp_path / f"round-{r}.effects"
        store = SQLiteStore(db)
        parent = banking_gate(store, [])
        held = parent.call(Principal.agent("billing-bot"), "send_money", PAY, Session("race"))
        assert isinstance(held, Refusal)
        assert held.approval_id is not None
        parent.approvals.approve(held.approval_id, ALICE)
        store.close()

        results = flat(
            pool.round(
                db,
                effects,
                "banking",
                [[call("billing-bot", "send_money", PAY, "race")]] * PROCESSES,
            )
        )

        ran = [r for r in results if "ran" in r]
        losers = [r for r in results if "code" in r]
        assert len(ran) == 1, results
        assert len(side_effects(effects)) == 1
        assert side_effects(effects)[0]["args"] == PAY
        assert {r["code"] for r in losers} == {"approval_required"}
        # the losers all wait on the same one new request, not on the consumed one
        assert len({r["approval_id"] for r in losers}) == 1
        assert losers[0]["approval_id"] != held.approval_id

        store = SQLiteStore(db)
        try:
            bodies = [rec.body for rec in store.records()]
            assert verify(store.records()).ok
            consumers = [
                b
                for b in bodies
                if b["decision"] == "allow" and b["detail"].get("approval") == held.approval_id
            ]
            assert len(consumers) == 1
            gate = Gate(bundle, store=store, clock=ManualClock(NOW))
            assert gate.approvals.get(held.approval_id).status == "consumed"
        finally:
            store.close()


# -- G9: one call id, many processes ------------------------------------------------


@pytest.mark.requirement("G9")
def test_processes_racing_on_one_call_id_run_it_at_most_once(pool: Pool, tmp_path: Path) -> None:
    for r in range(3):
        db, effects = tmp_path / f"round-{r}.db", tmp_path / f"round-{r}.effects"
        calls = [
            [call("billing-bot", "send_money", {**PAY, "amount": 10 + i}, f"s{i}", call_id="tc_1")]
            for i in range(PROCESSES)
        ]

        results = flat(pool.round(db, effects, "banking", calls))

        assert sum(1 for r in results if "ran" in r) == 1, results
        assert sorted(r.get("code", "ran") for r in results) == ["not_permitted"] * (
            PROCESSES - 1
        ) + ["ran"]
        assert len(side_effects(effects)) == 1
        store = SQLiteStore(db)
        try:
            reused = [b.body for b in store.records() if b.body["detail"].get("reused_call_id")]
        finally:
            store.close()
        assert len(reused) == PROCESSES - 1


# -- G10: one budget, one rate, many processes -------------------------------------


@pytest.mark.requirement("G10")
def test_processes_racing_for_one_budget_never_spend_more_than_it(
    pool: Pool, tmp_path: Path
) -> None:
    db, effects = tmp_path / "budget.db", tmp_path / "budget.effects"
    calls = [
        [call("ops-bot", "spend", {"amount": 150, "memo": f"{i}-{j}"}, f"s{i}") for j in range(3)]
        for i in range(PROCESSES)
    ]

    results = flat(pool.round(db, effects, "ledger", calls))

    assert sum(1 for r in results if "ran" in r) == 6  # floor(1000 / 150)
    assert len(side_effects(effects)) == 6
    assert {r.get("code") for r in results if "ran" not in r} == {"limit_exceeded"}
    store = SQLiteStore(db)
    try:
        assert store.counter('budget|ledger.spend|Agent::"ops-bot"', int(NOW)) == 900
    finally:
        store.close()


@pytest.mark.requirement("G10")
def test_processes_racing_for_one_rate_limit_get_exactly_its_count(
    pool: Pool, tmp_path: Path
) -> None:
    db, effects = tmp_path / "rate.db", tmp_path / "rate.effects"
    calls = [
        [call("ops-bot", "ping", {"n": i * 10 + j}, f"s{i}") for j in range(2)]
        for i in range(PROCESSES)
    ]

    results = flat(pool.round(db, effects, "ledger", calls))

    assert sum(1 for r in results if "ran" in r) == 3
    assert len(side_effects(effects)) == 3


# -- the same, with threads sharing one gate -----------------------------------------


def race(k: int, fn: Callable[[int], object]) -> list[object]:
    """Run fn(i) on k threads released together by a barrier."""
    barrier = threading.Barrier(k, timeout=BARRIER_BOUND)
    results: list[object] = [None] * k
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:
            results[i] = exc
            if not isinstance(exc, ApprovalError):
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_BOUND)
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish"
    assert not errors, errors
    return results


def banking_gate(store: Store, sent: list[dict[str, Any]]) -> Gate:
    gate = Gate.from_directory(BANKING, store=store, clock=ManualClock(NOW))
    lock = threading.Lock()

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> str:
        with lock:
            sent.append({"recipient": recipient, "amount": amount, "subject": subject})
        if subject == "fail":
            raise RuntimeError("bank down")
        return "sent"

    return gate


@pytest.mark.requirement("G8")
def test_threads_racing_to_consume_one_approval_run_it_exactly_once(store: Store) -> None:
    sent: list[dict[str, Any]] = []
    gate = banking_gate(store, sent)
    billing, s = Principal.agent("billing-bot"), Session("race")
    held = gate.call(billing, "send_money", PAY, s)
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    gate.approvals.approve(held.approval_id, ALICE)

    results = race(12, lambda i: gate.call(billing, "send_money", PAY, s))

    assert results.count("sent") == 1
    assert sent == [PAY]
    fresh = {r.approval_id for r in results if isinstance(r, Refusal)}
    assert len(fresh) == 1
    assert held.approval_id not in fresh


@pytest.mark.requirement("G8")
def test_threads_racing_run_approved_on_one_approval_run_it_exactly_once(store: Store) -> None:
    sent: list[dict[str, Any]] = []
    gate = banking_gate(store, sent)
    billing, s = Principal.agent("billing-bot"), Session("race")
    held = gate.call(billing, "send_money", PAY, s)
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    gate.approvals.approve(held.approval_id, ALICE)

    results = race(8, lambda i: gate.run_approved(held.approval_id or "", s))

    assert results.count("sent") == 1
    assert sent == [PAY]
    # a loser either saw it consumed already, or lost inside the transaction
    assert all(
        r == "sent"
        or isinstance(r, ApprovalError)
        or (isinstance(r, Refusal) and r.code == "approval_required")
        for r in results
    )


@pytest.mark.requirement("G8")
def test_racing_approvers_decide_an_approval_once(store: Store) -> None:
    gate = banking_gate(store, [])
    held = gate.call(Principal.agent("billing-bot"), "send_money", PAY, Session("race"))
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    approvers = [Approver(f"person-{i}", frozenset({"finance"})) for i in range(8)]

    def decide(i: int) -> object:
        desk = gate.approvals
        decide = desk.approve if i % 2 else desk.deny
        return decide(held.approval_id or "", approvers[i])

    results = race(8, decide)

    winners = [r for r in results if not isinstance(r, ApprovalError)]
    assert len(winners) == 1
    assert {r.problem for r in results if isinstance(r, ApprovalError)} == {"not_pending"}
    final = gate.approvals.get(held.approval_id)
    (winner,) = winners
    assert isinstance(winner, Approval)
    assert (final.status, final.decided_by) == (winner.status, winner.decided_by)
    decided = [
        b.body
        for b in gate.store.records()
        if b.body["detail"].get("event") in ("approval.approved", "approval.denied")
    ]
    assert len(decided) == 1


# -- every interleaving at transaction boundaries ------------------------------------


class PausingStore:
    """Delegates to a store; the victim thread stops before its n-th transaction
    until the test lets it go, so that another call runs from start to end there.
    `reached` is set at the pause, or when the victim finished without reaching it."""

    def __init__(self, inner: Store, pause_at: int) -> None:
        self.inner = inner
        self.pause_at = pause_at
        self.victim: int | None = None
        self.begun = 0
        self.paused = False
        self.reached = threading.Event()
        self.resume = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transaction(self, *, durable: bool = True) -> Any:
        if threading.get_ident() == self.victim:
            self.begun += 1
            if self.begun == self.pause_at:
                self.paused = True
                self.reached.set()
                assert self.resume.wait(JOIN_BOUND)
        return self.inner.transaction(durable=durable)


def contested_gate(contest: str, store: Store, ran: list[str]) -> tuple[Gate, Callable[[], object]]:
    """A gate and the one call two callers contend for: an approved payment, a
    payment under one call id, or a spend of 600 against a budget of 1000."""
    if contest == "one budget":
        gate = Gate.from_directory(LEDGER, store=store, clock=ManualClock(NOW))

        @gate.tool(effect="irreversible")
        def spend(memo: str, amount: int) -> str:
            ran.append(memo)
            return "spent"

        ops = Principal.agent("ops-bot")
        return gate, lambda: gate.call(ops, "spend", {"amount": 600, "memo": "m"}, Session("s"))
    gate = Gate.from_directory(BANKING, store=store, clock=ManualClock(NOW))

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> str:
        ran.append(subject)
        return "sent"

    billing = Principal.agent("billing-bot")
    if contest == "one call id":
        small = {**PAY, "amount": 60}
        return gate, lambda: gate.call(billing, "send_money", small, Session("s"), call_id="tc_1")
    held = gate.call(billing, "send_money", PAY, Session("s"))
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    gate.approvals.approve(held.approval_id, ALICE)
    return gate, lambda: gate.call(billing, "send_money", PAY, Session("s"))


@pytest.mark.requirement("G8")
@pytest.mark.requirement("G9")
@pytest.mark.requirement("G10")
@pytest.mark.parametrize("pause_at", [1, 2, 3])
@pytest.mark.parametrize("contest", ["one approval", "one call id", "one budget"])
def test_a_call_run_between_any_two_transactions_of_another_cannot_make_both_run(
    contest: str, pause_at: int, store: Store
) -> None:
    """The first call stops before its 1st, 2nd or 3rd store transaction while
    the second runs from start to end: exactly one of them runs, at every point."""
    pausing = PausingStore(store, pause_at)
    ran: list[str] = []
    _, contend = contested_gate(contest, pausing, ran)  # type: ignore[arg-type]
    answers: list[object] = []

    def first() -> None:
        pausing.victim = threading.get_ident()
        try:
            answers.append(contend())
        finally:
            pausing.reached.set()

    victim = threading.Thread(target=first)
    victim.start()
    assert pausing.reached.wait(JOIN_BOUND)
    answers.append(contend())
    pausing.resume.set()
    victim.join(JOIN_BOUND)

    assert not victim.is_alive()
    assert pausing.paused or pause_at == 3  # the call has two transactions; 3 is past its end
    assert len(ran) == 1, answers
    assert sum(1 for a in answers if not isinstance(a, Refusal)) == 1


# -- G9: call ids -------------------------------------------------------------------------


@pytest.mark.requirement("G9")
def test_a_resent_call_id_is_refused_and_audited(store: Store) -> None:
    sent: list[dict[str, Any]] = []
    gate = banking_gate(store, sent)
    billing, s = Principal.agent("billing-bot"), Session("s")
    small = {**PAY, "amount": 5}

    first = gate.call(billing, "send_money", small, s, call_id="tc_1")
    again = gate.call(billing, "send_money", small, s, call_id="tc_1")
    changed = gate.call(billing, "send_money", {**small, "amount": 6}, s, call_id="tc_1")

    assert first == "sent"
    assert sent == [small]
    records = {b.body["id"]: b.body for b in gate.store.records()}
    for refusal in (again, changed):
        assert isinstance(refusal, Refusal)
        assert refusal.code == "not_permitted"
        body = records[refusal.ref]
        assert (body["decision"], body["code"], body["detail"]["reused_call_id"]) == (
            "deny",
            "not_permitted",
            True,
        )


@pytest.mark.requirement("G9")
def test_a_call_id_whose_tool_failed_is_still_used(store: Store) -> None:
    sent: list[dict[str, Any]] = []
    gate = banking_gate(store, sent)
    billing, s = Principal.agent("billing-bot"), Session("s")
    failing = {**PAY, "amount": 5, "subject": "fail"}

    first = gate.call(billing, "send_money", failing, s, call_id="tc_1")
    again = gate.call(billing, "send_money", failing, s, call_id="tc_1")

    assert isinstance(first, ToolFailure)
    assert isinstance(again, Refusal)
    assert again.code == "not_permitted"
    assert len(sent) == 1


@pytest.mark.requirement("G9")
def test_a_call_id_stays_used_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    sent: list[dict[str, Any]] = []
    small = {**PAY, "amount": 5}
    billing = Principal.agent("billing-bot")
    first = SQLiteStore(path)
    assert (
        banking_gate(first, sent).call(billing, "send_money", small, Session("a"), call_id="tc_9")
        == "sent"
    )
    first.close()

    second = SQLiteStore(path)
    try:
        again = banking_gate(second, sent).call(
            billing, "send_money", small, Session("b"), call_id="tc_9"
        )
    finally:
        second.close()

    assert isinstance(again, Refusal)
    assert again.code == "not_permitted"
    assert len(sent) == 1


@pytest.mark.requirement("G9")
def test_threads_racing_on_one_call_id_run_it_at_most_once(store: Store) -> None:
    sent: list[dict[str, Any]] = []
    gate = banking_gate(store, sent)
    billing = Principal.agent("billing-bot")

    results = race(
        16,
        lambda i: gate.call(
            billing, "send_money", {**PAY, "amount": 1 + i % 3}, Session(f"s{i}"), call_id="tc_1"
        ),
    )

    assert results.count("sent") == 1
    assert len(sent) == 1
    assert all(isinstance(r, Refusal) and r.code == "not_permitted" for r in results if r != "sent")


# -- opening one store file from several processes ------------------------------------


def test_a_store_opened_while_another_connection_writes_a_new_file_waits_its_timeout(
    tmp_path: Path,
) -> None:
    """SQLiteStore(path, timeout=...) must wait for a concurrent writer, not fail at once.

    Several gate processes starting on one new file hit this: `PRAGMA
    journal_mode=WAL` answers SQLITE_BUSY without consulting the busy timeout, so
    all but one of them can fail with "database is locked" (see the pool's
    pre-created files). Here another connection holds a write transaction on the
    new, not yet WAL, file and lets go after a bounded wait.
    """
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    opened = threading.Event()
    box: dict[str, object] = {}

    def open_store() -> None:
        try:
            box["store"] = SQLiteStore(path, timeout=10)
        except StoreError as exc:
            box["error"] = exc
        opened.set()

    opener = threading.Thread(target=open_store)
    opener.start()
    answered_while_locked = opened.wait(0.5)
    other.execute("COMMIT")
    other.close()
    opener.join(JOIN_BOUND)
    store = box.get("store")
    if isinstance(store, SQLiteStore):
        store.close()

    assert "error" not in box, box.get("error")
    assert not answered_while_locked
