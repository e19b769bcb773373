"""Remembered sources (argument provenance) in every store: memory, SQLite, PostgreSQL.

A session's sources are kept with its state, numbered, oldest evicted first
beyond the bound (and the session then stays overflowed); they are written
in the caller's transaction (a rolled-back transaction remembers nothing)
and read back exactly, whatever characters they hold. A restarted SQLite
store and a second node on PostgreSQL see the same sources.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from store_backends import pg_schema, store
from warded import SQLiteStore, Store
from warded.model import Remembered, SessionState, Source

__all__ = ["store"]

BOUND = 30.0


def src(name: str, *leaves: str, labels: tuple[str, ...] = ()) -> Source:
    return Source(name, labels, leaves)


@pytest.mark.requirement("G18")
def test_sources_round_trip_numbered_in_order(store: Store) -> None:
    odd = "nul\x00 back\\slash \u200b zero-width \ud800 lone surrogate é"
    with store.transaction() as tx:
        added = tx.remember("s", [src("user", "pay GB33")], limit=1000)
        tx.update_session("s", labels=["x"], calls=1)
    assert added == Remembered(1, False, 1, ((1, src("user", "pay GB33")),))
    with store.transaction() as tx:
        tx.remember("s", [src("tool:read", odd, "2", labels=("untrusted",))], limit=1000)

    kept = len("pay GB33") + len(odd) + 1
    assert store.session("s") == SessionState("s", frozenset({"x"}), 1, 2, False, kept)
    assert store.sources("s") == Remembered(
        2,
        False,
        1,
        ((1, src("user", "pay GB33")), (2, src("tool:read", odd, "2", labels=("untrusted",)))),
    )
    assert store.sources("s", after=1).entries == (
        (2, src("tool:read", odd, "2", labels=("untrusted",))),
    )
    assert store.sources("unknown") == Remembered(0, False, 1, ())


@pytest.mark.requirement("G18")
def test_the_oldest_sources_go_first_and_the_session_stays_overflowed(store: Store) -> None:
    answers = []
    for i in range(4):
        with store.transaction() as tx:
            answers.append(tx.remember("s", [src("tool:t", "x" * 40 + str(i))], limit=100))
    remembered = store.sources("s")
    assert [(a.version, a.first, a.overflowed) for a in answers] == [
        (1, 1, False),
        (2, 1, False),
        (3, 2, True),
        (4, 3, True),
    ]

    assert [seq for seq, _ in remembered.entries] == [3, 4]
    assert store.session("s").kept == 82
    assert remembered.first == 3
    assert remembered.version == 4
    assert remembered.overflowed
    assert store.session("s").overflowed
    with store.transaction() as tx:
        tx.remember("s", [], limit=10_000)
    assert store.session("s").overflowed  # never goes back


@pytest.mark.requirement("G18")
def test_a_source_larger_than_the_bound_is_not_kept_and_overflows(store: Store) -> None:
    with store.transaction() as tx:
        tx.remember("s", [src("user", "small")], limit=10)
        added = tx.remember("s", [src("tool:t", "y" * 11)], limit=10)
    assert added == Remembered(2, True, 1, ())
    remembered = store.sources("s")
    assert [s for _, s in remembered.entries] == [src("user", "small")]
    assert remembered.version == 2


@pytest.mark.requirement("G18")
def test_overflowed_can_be_set_without_a_source(store: Store) -> None:
    with store.transaction() as tx:
        tx.remember("s", [], limit=10, overflowed=True)
    assert store.session("s") == SessionState("s", overflowed=True)


@pytest.mark.requirement("G18")
def test_a_rolled_back_transaction_remembers_nothing(store: Store) -> None:
    def remember_then_fail() -> None:
        with store.transaction() as tx:
            tx.remember("s", [src("user", "pay")], limit=100)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        remember_then_fail()
    assert store.sources("s") == Remembered(0, False, 1, ())
    assert store.session("s") == SessionState("s")


@pytest.mark.requirement("G18")
def test_sources_remembered_by_racing_threads_are_all_kept(store: Store) -> None:
    barrier = threading.Barrier(8)

    def add(i: int) -> None:
        barrier.wait(BOUND)
        with store.transaction() as tx:
            tx.remember("s", [src("tool:t", f"value-{i}")], limit=10_000)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    remembered = store.sources("s")
    assert remembered.version == 8
    assert sorted(s.leaves[0] for _, s in remembered.entries) == [f"value-{i}" for i in range(8)]
    assert [seq for seq, _ in remembered.entries] == list(range(1, 9))


@pytest.mark.requirement("G18")
def test_a_reopened_sqlite_store_has_the_sources(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "s.db")
    with first.transaction() as tx:
        tx.remember("s", [src("tool:read", "DE89", labels=("untrusted",))], limit=100)
    first.close()
    again = SQLiteStore(tmp_path / "s.db")
    try:
        assert again.sources("s").entries == ((1, src("tool:read", "DE89", labels=("untrusted",))),)
        assert again.session("s").remembered == 1
    finally:
        again.close()


@pytest.mark.requirement("G18")
def test_a_sqlite_file_of_schema_version_1_is_migrated_with_its_sessions(tmp_path: Path) -> None:
    import json
    import sqlite3

    from warded.stores.sqlite import MIGRATIONS

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO sessions VALUES ('s', ?, 3)", (json.dumps(["untrusted"]),))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    store = SQLiteStore(path)
    try:
        assert store.session("s") == SessionState("s", frozenset({"untrusted"}), 3)
        with store.transaction() as tx:
            tx.remember("s", [src("user", "hello")], limit=100)
        assert store.session("s") == SessionState("s", frozenset({"untrusted"}), 3, 1, kept=5)
    finally:
        store.close()


@pytest.mark.requirement("G18")
def test_another_postgres_node_sees_the_sources() -> None:
    from warded.stores.postgres import PostgresStore

    with pg_schema() as url:
        one, two = PostgresStore(url), PostgresStore(url)
        try:
            with one.transaction() as tx:
                tx.remember("s", [src("user", "GB33")], limit=100)
            with two.transaction() as tx:
                tx.remember("s", [src("tool:t", "DE89")], limit=100)
            assert one.sources("s") == two.sources("s")
            assert [seq for seq, _ in one.sources("s").entries] == [1, 2]
        finally:
            one.close()
            two.close()
