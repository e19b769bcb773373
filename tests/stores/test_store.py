"""The store port, the same on every backend: memory, SQLite and PostgreSQL.

Each test gets a new, empty store of each kind (tests/store_backends.py). What
is checked is what the gate relies on: a transaction keeps all or nothing,
the chain is one unforked sequence that verifies, limits and single-use keys
hold under threads, session labels only grow, approvals round-trip exactly,
and transactions that share a commit (group commit) stay apart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from store_backends import store
from warded import AuditEntry, Store, WardedError, verify
from warded.model import SessionState
from warded.obligations.approvals import Approval
from warded.obligations.limits import Reservation

__all__ = ["store"]

BOUND = 30.0  # seconds; bounds every wait on another thread


def event(n: int, **detail: Any) -> AuditEntry:
    return AuditEntry(
        kind="event", call=f"c{n}", time=1_767_225_600.0 + n, detail={"n": n, **detail}
    )


def approval(i: str, digest: str = "d", status: Any = "pending", created: float = 1.0) -> Approval:
    return Approval(
        id=i,
        digest=digest,
        call=f"call-{i}",
        principal='Agent::"billing-bot"',
        tool="send_money",
        args='{"amount":1.5}',
        args_digest="a" * 64,
        resource={"type": "Payee", "id": "GB33"},
        session="s",
        bundle_version="v1",
        group="finance",
        policy="payments.large",
        created=created,
        expires=created + 600.0,
        status=status,
    )


class Boom(Exception):
    pass


def race(k: int, fn: Callable[[int], object]) -> list[object]:
    """fn(i) on k threads released together by a barrier; their results (or exceptions)."""
    barrier = threading.Barrier(k, timeout=BOUND)
    results: list[object] = [None] * k

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return results


# -- the audit chain --------------------------------------------------------------------


@pytest.mark.requirement("G12")
def test_appended_records_form_a_chain_that_verifies_against_its_checkpoint(store: Store) -> None:
    assert store.checkpoint().size == 0
    first = store.append([event(0)])
    more = store.append([event(1), event(2)])

    records = list(store.records())
    assert [r.seq for r in records] == [0, 1, 2]
    assert records == first + more
    assert [r.body["detail"]["n"] for r in records] == [0, 1, 2]
    cp = store.checkpoint()
    assert (cp.size, cp.head) == (3, records[-1].hash)
    assert verify(records, cp).ok
    assert list(store.records(2)) == records[2:]


@pytest.mark.requirement("G11")
def test_a_transaction_that_raises_leaves_nothing_behind(store: Store) -> None:
    store.append([event(0)])
    before = store.checkpoint()
    limit = Reservation("budget|p", 0, Decimal(5), Decimal(10))

    def everything_then_raise() -> None:
        with store.transaction() as tx:
            tx.append([event(1)])
            assert tx.reserve(limit)
            assert tx.claim("call-1")
            tx.put_approval(approval("a1"))
            tx.update_session("s", labels=["untrusted"], calls=1)
            raise Boom

    with pytest.raises(Boom):
        everything_then_raise()

    assert store.checkpoint() == before
    assert store.counter("budget|p", 0) == 0
    assert store.session("s") == SessionState("s")
    with store.transaction() as tx:
        assert tx.claim("call-1"), "the rolled-back claim is still held"
        assert tx.approval("a1") is None
    store.append([event(1)])
    assert verify(store.records()).ok


@pytest.mark.requirement("G11")
def test_entries_that_cannot_be_sealed_fail_the_transaction(
    store: Store,
) -> None:
    store.append([event(0)])
    before = store.checkpoint()
    bad = AuditEntry(kind="event", call="x", time=0.0, args={"not json": {1, 2}})

    with pytest.raises(WardedError):
        store.append([event(1), bad])

    assert store.checkpoint() == before


def test_what_a_transaction_wrote_it_reads_back_before_committing(store: Store) -> None:
    with store.transaction() as tx:
        tx.update_session("s", labels=["b", "a"], calls=2)
        assert tx.session("s") == SessionState("s", frozenset({"a", "b"}), 2)
        tx.put_approval(approval("a1"))
        found = tx.approval("a1")
        assert found == approval("a1")
        sealed = tx.append([event(0)])
        assert tx.append([event(1)])[0].body["prev"] == sealed[0].hash


@pytest.mark.requirement("G12")
def test_appends_from_many_threads_form_one_unforked_chain(store: Store) -> None:
    writers, batches, size = 8, 12, 3

    def write(w: int) -> None:
        for b in range(batches):
            store.append([event(w * 1000 + b * 10 + k, w=w, b=b, k=k) for k in range(size)])

    assert race(writers, write) == [None] * writers

    records = list(store.records())
    assert verify(records).ok
    assert len(records) == writers * batches * size
    assert len({r.body["prev"] for r in records}) == len(records), "two records share a parent"
    tags = [(r.body["detail"]["w"], r.body["detail"]["b"]) for r in records]
    for start in range(0, len(tags), size):
        assert len(set(tags[start : start + size])) == 1, "a torn batch"


# -- limits, call ids, sessions ---------------------------------------------------------


@pytest.mark.requirement("G10")
def test_reservations_stop_at_the_limit_and_releases_give_back(store: Store) -> None:
    r = Reservation("budget|p", 86400, Decimal("2.5"), Decimal(6))
    with store.transaction() as tx:
        assert tx.reserve(r)
        assert tx.reserve(r)
        assert not tx.reserve(r)
    assert store.counter("budget|p", 86400) == Decimal(5)
    assert store.counter("budget|p", 0) == 0
    with store.transaction() as tx:
        assert not tx.reserve(Reservation("budget|q", 0, Decimal(7), Decimal(6)))
        tx.release(r)
        tx.release(r)
        tx.release(r)  # never below zero
    assert store.counter("budget|p", 86400) == 0
    assert store.counter("budget|q", 0) == 0


@pytest.mark.requirement("G10")
def test_threads_reserving_against_one_limit_never_exceed_it(store: Store) -> None:
    r = Reservation("budget|p", 0, Decimal(150), Decimal(1000))

    def reserve(i: int) -> bool:
        with store.transaction() as tx:
            return tx.reserve(r)

    results = race(16, reserve)

    assert results.count(True) == 6
    assert store.counter("budget|p", 0) == Decimal(900)


@pytest.mark.requirement("G9")
def test_a_key_is_claimed_once_under_any_interleaving(store: Store) -> None:
    def claim(i: int) -> bool:
        with store.transaction() as tx:
            return tx.claim('Agent::"a"|tc_1')

    assert race(16, claim).count(True) == 1
    with store.transaction() as tx:
        assert tx.claim('Agent::"a"|tc_2')


@pytest.mark.requirement("G17")
def test_session_labels_only_grow_and_calls_add_up(store: Store) -> None:
    assert store.session("s") == SessionState("s")
    with store.transaction() as tx:
        tx.update_session("s", labels=["untrusted"], calls=1)
    with store.transaction() as tx:
        state = tx.update_session("s", labels=["injection", "untrusted"])
    assert state == SessionState("s", frozenset({"untrusted", "injection"}), 1)
    with store.transaction() as tx:
        tx.update_session("s", labels=[], calls=3)
    assert store.session("s") == SessionState("s", frozenset({"untrusted", "injection"}), 4)
    assert store.session("other") == SessionState("other")


@pytest.mark.requirement("G17")
def test_labels_added_by_racing_threads_are_all_kept(store: Store) -> None:
    def label(i: int) -> None:
        with store.transaction() as tx:
            tx.update_session("s", labels=[f"l{i}"], calls=1)

    race(12, label)

    assert store.session("s") == SessionState("s", frozenset(f"l{i}" for i in range(12)), 12)


# -- approvals ------------------------------------------------------------------------------


@pytest.mark.requirement("G8")
def test_approvals_round_trip_exactly_and_are_found_by_digest_and_status(store: Store) -> None:
    older = approval("a1", "d1", created=1.0)
    newer = approval("a2", "d1", created=2.0)
    other = approval("a3", "d2", "approved", created=3.0)
    with store.transaction() as tx:
        for a in (newer, older, other):
            tx.put_approval(a)
    with store.transaction() as tx:
        assert tx.approval("a1") == older
        assert tx.approval("nope") is None
        assert tx.approval_for("d1", "pending") == newer
        assert tx.approval_for("d1", "approved") is None
        assert tx.approvals() == [older, newer, other]
        assert tx.approvals("approved") == [other]
        tx.put_approval(newer.with_status("consumed", decided_by="alice", decided_at=5.5))
    with store.transaction() as tx:
        assert tx.approval_for("d1", "pending") == older
        consumed = tx.approval("a2")
    assert consumed == newer.with_status("consumed", decided_by="alice", decided_at=5.5)


@pytest.mark.requirement("G8")
def test_threads_consuming_one_approval_consume_it_once(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_approval(approval("a1", status="approved"))

    def consume(i: int) -> bool:
        with store.transaction() as tx:
            found = tx.approval_for("d", "approved")
            if found is None:
                return False
            tx.put_approval(found.with_status("consumed"))
            return True

    assert race(16, consume).count(True) == 1


# -- transactions sharing a commit -------------------------------------------------------------


def test_a_raising_transaction_does_not_undo_the_others_committed_with_it(store: Store) -> None:
    def work(i: int) -> None:
        with store.transaction() as tx:
            tx.update_session(f"s{i}", labels=["x"], calls=1)
            tx.append([event(i)])
            assert tx.claim(f"k{i}")
            if i % 3 == 0:
                raise Boom

    results = race(12, work)

    assert [type(r) for r in results] == [Boom if i % 3 == 0 else type(None) for i in range(12)]
    kept = sorted(r.body["detail"]["n"] for r in store.records())
    assert kept == [i for i in range(12) if i % 3]
    assert verify(store.records()).ok
    for i in range(12):
        assert store.session(f"s{i}").calls == (0 if i % 3 == 0 else 1)
    with store.transaction() as tx:
        assert [tx.claim(f"k{i}") for i in range(12)] == [i % 3 == 0 for i in range(12)]


def test_a_transaction_returns_only_once_what_it_did_is_committed(store: Store) -> None:
    seen: list[int] = []

    def work(i: int) -> None:
        with store.transaction(durable=i % 2 == 0) as tx:
            tx.update_session(f"s{i}", calls=1)
            tx.append([event(i)])
        # read outside any transaction: only committed state is visible there
        seen.append(store.session(f"s{i}").calls)

    race(16, work)

    assert seen == [1] * 16
    assert len(list(store.records())) == 16


# -- keys are whatever a caller chose ----------------------------------------------------------


ODD = ["nul\x00byte", "back\\slash", "back\\0slash-zero", "\\", "\x00", "ünï\u200bcode"]


@pytest.mark.requirement("G17")
@pytest.mark.parametrize("odd", ODD)
def test_any_text_is_a_key_and_comes_back_as_it_went_in(store: Store, odd: str) -> None:
    limit = Reservation(f"budget|p|{odd}", 0, Decimal(1), Decimal(10))
    with store.transaction() as tx:
        tx.update_session(odd, labels=[odd, "plain"], calls=1)
        assert tx.claim(odd)
        assert tx.reserve(limit)
        tx.put_approval(approval(odd, digest=odd))
    with store.transaction() as tx:
        assert not tx.claim(odd)
        assert tx.claim(odd + "x")
        assert tx.approval(odd) == approval(odd, digest=odd)
        assert tx.approval_for(odd, "pending") == approval(odd, digest=odd)
        assert tx.session(odd) == SessionState(odd, frozenset({odd, "plain"}), 1)
    assert store.session(odd) == SessionState(odd, frozenset({odd, "plain"}), 1)
    assert store.counter(f"budget|p|{odd}", 0) == 1
    for other in ODD:
        if other != odd:
            assert store.session(other) == SessionState(other)
