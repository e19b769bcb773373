"""`acall` when its caller is cancelled, and sync tools off the event loop (issue 8,
items 5 and 18).

Cancelled before the tool started: the authorization (in its own thread) still
completes, and the call is recorded as never run, its reservations and
approval given back. Cancelled while an async tool runs: recorded `cancelled`
and the CancelledError re-raised. A sync tool runs in a worker thread; if its
caller is cancelled it runs to its end and its real outcome is recorded.
Everything is coordinated with events; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from typing import Any

import pytest

from support import TEST_KEY
from tiny import tiny
from warded import (
    Approver,
    AuditEntry,
    AuditRecord,
    Gate,
    ManualClock,
    MemoryStore,
    Principal,
    Refusal,
    Session,
    Store,
)
from warded.audit.state import verify_state
from warded.store import Tx

BOT = Principal.agent("bot")
ALICE = Approver("alice", frozenset({"finance"}))
START = 1_767_225_600
BUDGET_KEY = f"budget|pay|{BOT}"
WAIT = 20.0
PAY = {"amount": 500}


class _Spy:
    """A transaction that notes whether it appended an outcome record."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self.outcome = False

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        self.outcome |= any(e.kind == "outcome" for e in entries)
        return self._tx.append(entries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


class WatchedStore:
    """A store that can hold the next transaction of a decision thread until released,
    and tells when an outcome record has been committed."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.armed = False
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.outcome = threading.Event()
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[Tx]:
        with self._lock:
            hold = self.armed and threading.current_thread().name.startswith("warded-decide")
            self.armed &= not hold
        if hold:
            self.arrived.set()
            assert self.release.wait(WAIT), "the held transaction was never released"
        with self.inner.transaction(durable=durable) as tx:
            spy = _Spy(tx)
            yield spy  # type: ignore[misc]
        if spy.outcome:
            self.outcome.set()

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._transaction(durable)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def pay_gate(executor: Any, *, labels: Sequence[str] = ()) -> tuple[Gate, WatchedStore]:
    bundle = tiny(
        {"pay": "{ amount: Long }"},
        '@id("pay")\n@approval("finance")\n@budget("args.amount 1000/day")\n'
        "permit (principal, action, resource);\n",
    )
    store = WatchedStore(MemoryStore())
    gate = Gate(bundle, store=store, key=TEST_KEY, clock=ManualClock(START))  # type: ignore[arg-type]
    schema = {"type": "object", "properties": {"amount": {"type": "integer"}}}
    gate.register("pay", schema, executor, labels=labels)
    return gate, store


def approve(gate: Gate, session: Session) -> str:
    """Ask once (held for approval) and have alice approve it; the approval id."""
    held = gate.call(BOT, "pay", PAY, session)
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    gate.approvals.approve(held.approval_id, ALICE)
    return held.approval_id


def events(gate: Gate, approval: str) -> list[str]:
    return [
        r.body["detail"]["event"]
        for r in gate.store.records()
        if r.body["kind"] == "event" and r.body["detail"].get("approval") == approval
    ]


def outcomes(gate: Gate) -> list[dict[str, Any]]:
    return [r.body for r in gate.store.records() if r.body["kind"] == "outcome"]


# -- cancelled before the tool started --------------------------------------------------


@pytest.mark.requirement("G8")
@pytest.mark.requirement("G10")
def test_a_caller_cancelled_before_the_tool_started_gets_its_approval_and_budget_given_back() -> (
    None
):
    ran: list[int] = []
    gate, store = pay_gate(lambda amount: ran.append(amount) or "paid")
    s = Session("s")
    approval = approve(gate, s)

    async def caller() -> None:
        store.armed = True
        task = asyncio.create_task(gate.acall(BOT, "pay", PAY, s))
        assert await asyncio.to_thread(store.arrived.wait, WAIT), "never reached its commit"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(caller())
    store.release.set()  # the authorization completes after its caller has gone
    assert store.outcome.wait(WAIT), "the abandoned call's outcome was never recorded"

    assert ran == []
    (outcome,) = outcomes(gate)
    assert outcome["outcome"] == "not_run"
    assert outcome["detail"]["reason"] == "cancelled before it ran"
    assert [r["key"] for r in outcome["detail"]["released"]] == [BUDGET_KEY]
    assert gate.store.counter(BUDGET_KEY, START) == 0
    assert gate.approvals.get(approval).status == "approved"
    assert events(gate, approval) == [
        "approval.created",
        "approval.approved",
        "approval.consumed",
        "approval.returned",
    ]
    assert verify_state(gate.store.records(), gate.store) == []
    # the approval given back runs the agent's retry, once
    assert gate.call(BOT, "pay", PAY, s) == "paid"
    assert ran == [500]
    assert gate.approvals.get(approval).status == "consumed"


# -- cancelled while an async tool runs ---------------------------------------------------


@pytest.mark.requirement("G11")
def test_a_caller_cancelled_while_an_async_tool_runs_records_cancelled_and_re_raises() -> None:
    state: dict[str, Any] = {}

    async def pay(amount: int) -> str:
        state["started"].set()
        await asyncio.Event().wait()  # a payment whose answer never comes
        return "paid"

    gate, _ = pay_gate(pay, labels=["paid"])
    s = Session("s")
    approval = approve(gate, s)

    async def caller() -> None:
        state["started"] = asyncio.Event()
        task = asyncio.create_task(gate.acall(BOT, "pay", PAY, s))
        await asyncio.wait_for(state["started"].wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(caller())

    (outcome,) = outcomes(gate)  # recorded before the CancelledError reached the caller
    assert (outcome["outcome"], outcome["detail"]["error"]) == ("cancelled", "CancelledError")
    assert gate.session_state(s).labels == {"paid"}
    # the payment may have been made: the budget stays spent and the approval used
    assert gate.store.counter(BUDGET_KEY, START) == Decimal(500)
    assert gate.approvals.get(approval).status == "consumed"
    assert verify_state(gate.store.records(), gate.store) == []


# -- sync tools run in a worker thread ------------------------------------------------------


@pytest.mark.requirement("G11")
def test_a_sync_tool_runs_off_the_loop_and_finishes_with_its_real_outcome_when_cancelled() -> None:
    entered, go = threading.Event(), threading.Event()
    threads: list[int] = []
    ran: list[int] = []

    def pay(amount: int) -> str:
        threads.append(threading.get_ident())
        entered.set()
        assert go.wait(WAIT), "the event loop never let the tool finish"
        ran.append(amount)
        return "paid"

    gate, store = pay_gate(pay, labels=["paid"])
    s = Session("s")
    approve(gate, s)
    loop_thread: list[int] = []

    async def caller() -> None:
        loop_thread.append(threading.get_ident())
        task = asyncio.create_task(gate.acall(BOT, "pay", PAY, s))
        # the loop keeps running while the tool blocks: it is not on the loop's thread
        assert await asyncio.to_thread(entered.wait, WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        go.set()  # let the tool finish after its caller has gone

    asyncio.run(caller())
    assert store.outcome.wait(WAIT), "the tool's outcome was never recorded"

    assert threads != loop_thread
    assert ran == [500]
    (outcome,) = outcomes(gate)
    assert outcome["outcome"] == "ok"
    assert gate.session_state(s).labels == {"paid"}
    assert gate.store.counter(BUDGET_KEY, START) == Decimal(500)


def test_acall_returns_a_sync_tools_result_from_its_worker_thread() -> None:
    threads: list[int] = []
    gate, _ = pay_gate(lambda amount: threads.append(threading.get_ident()) or amount * 2)
    s = Session("s")
    approve(gate, s)

    async def caller() -> tuple[Any, int]:
        return await gate.acall(BOT, "pay", PAY, s), threading.get_ident()

    result, loop_thread = asyncio.run(caller())

    assert result == 1000
    assert len(threads) == 1
    assert threads[0] != loop_thread
