"""The SQLite audit store: tamper evidence on the file (G12) and one unforked chain.

Tampering here is done the way an intruder would: with a separate sqlite3
connection editing rows directly. `verify` over the reopened store must fail
at the first bad record. Concurrent appends from threads and from processes
into one file must give one chain that verifies, with every record present.
"""

from __future__ import annotations

import json
import os
import select
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warded import AuditEntry, Checkpoint, SQLiteStore, VerifyResult, WardedError, verify
from warded.audit.record import AUDIT_DOMAIN, seal
from warded.canonical import canonical_json, digest

N = 8
BOUND = 30.0  # seconds; bounds every wait on another thread or process


def entry(i: int, **detail: Any) -> AuditEntry:
    kinds = ("decision", "outcome", "event")
    return AuditEntry(
        kind=kinds[i % 3],  # type: ignore[arg-type]
        call=f"call-{i // 2}",
        time=1_767_225_600.0 + i,
        principal='Agent::"billing-bot"',
        tool="send_money",
        args={"amount": i},
        decision="allow" if i % 3 == 0 else None,
        detail=detail,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An audit file holding a chain of N records."""
    path = tmp_path / "audit.db"
    store = SQLiteStore(path)
    try:
        store.append([entry(0)])
        store.append([entry(1), entry(2)])
        store.append([entry(i) for i in range(3, N)])
    finally:
        store.close()
    return path


def checkpoint_of(path: Path) -> Checkpoint:
    store = SQLiteStore(path)
    try:
        return store.checkpoint()
    finally:
        store.close()


def verify_file(path: Path, checkpoint: Checkpoint | None = None) -> VerifyResult:
    store = SQLiteStore(path)
    try:
        return verify(store.records(), checkpoint)
    finally:
        store.close()


@contextmanager
def tamper(path: Path) -> Iterator[sqlite3.Connection]:
    """A separate connection to the file, committed and closed on exit."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        yield conn
        conn.execute("COMMIT")
    finally:
        conn.close()


def row(conn: sqlite3.Connection, seq: int) -> tuple[str, bytes]:
    found = conn.execute("SELECT hash, body FROM audit WHERE seq = ?", (seq,)).fetchone()
    return found[0], bytes(found[1])


def assert_fails_at(path: Path, index: int, checkpoint: Checkpoint | None = None) -> None:
    result = verify_file(path, checkpoint)
    assert result.ok is False
    assert result.first_bad == index
    assert result.reason


# -- G12: tampering with the file ----------------------------------------------


@pytest.mark.requirement("G12")
def test_an_untouched_file_verifies_against_its_checkpoint(db: Path) -> None:
    cp = checkpoint_of(db)
    assert cp.size == N
    result = verify_file(db, cp)
    assert result.ok
    assert (result.size, result.head) == (cp.size, cp.head)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", [0, 3, N - 1])
@pytest.mark.parametrize("position", [0, 11, -3])
def test_a_flipped_byte_in_a_row_is_caught_at_its_record(
    db: Path, index: int, position: int
) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        _, body = row(conn, index)
        flipped = bytearray(body)
        flipped[position] ^= 0x01
        conn.execute("UPDATE audit SET body = ? WHERE seq = ?", (bytes(flipped), index))
    assert_fails_at(db, index)
    assert_fails_at(db, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", [0, 3, N - 1])
def test_an_edited_field_re_serialized_canonically_is_caught_at_its_record(
    db: Path, index: int
) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        _, body = row(conn, index)
        changed = canonical_json({**json.loads(body), "decision": "deny", "tool": "get_balance"})
        conn.execute("UPDATE audit SET body = ? WHERE seq = ?", (changed, index))
    assert_fails_at(db, index)
    assert_fails_at(db, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", [0, 3, N - 1])
def test_a_row_edited_as_text_the_way_the_sqlite3_shell_does_is_caught_at_its_record(
    db: Path, index: int
) -> None:
    # `sqlite3 audit.db "UPDATE audit SET body = replace(body, ...)"` stores TEXT, not a BLOB.
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        conn.execute(
            "UPDATE audit SET body = replace(CAST(body AS TEXT), '\"allow\"', '\"deny\"') "
            "WHERE seq = ?",
            (index,),
        )
        conn.execute(
            "UPDATE audit SET body = replace(CAST(body AS TEXT), 'send_money', 'get_balance') "
            "WHERE seq = ?",
            (index,),
        )
    assert_fails_at(db, index)
    assert_fails_at(db, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", [0, 3, N - 2])
def test_an_edit_with_its_hash_recomputed_breaks_the_next_records_link(
    db: Path, index: int
) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        _, body = row(conn, index)
        forged = canonical_json({**json.loads(body), "reasons": ["forged"]})
        conn.execute(
            "UPDATE audit SET hash = ?, body = ? WHERE seq = ?",
            (digest(AUDIT_DOMAIN, forged), forged, index),
        )
    assert_fails_at(db, index + 1)
    assert_fails_at(db, index + 1, cp)


@pytest.mark.requirement("G12")
def test_a_resealed_last_row_is_caught_against_the_checkpoint(db: Path) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        _, body = row(conn, N - 1)
        forged = canonical_json({**json.loads(body), "reasons": ["forged"]})
        conn.execute(
            "UPDATE audit SET hash = ?, body = ? WHERE seq = ?",
            (digest(AUDIT_DOMAIN, forged), forged, N - 1),
        )
    assert verify_file(db).ok
    assert_fails_at(db, N - 1, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("index", [0, 3, N - 1])
def test_a_forged_row_with_a_correct_own_hash_but_a_wrong_prev_is_caught_at_itself(
    db: Path, index: int
) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        _, body = row(conn, index)
        forged = canonical_json({**json.loads(body), "prev": "f" * 64})
        conn.execute(
            "UPDATE audit SET hash = ?, body = ? WHERE seq = ?",
            (digest(AUDIT_DOMAIN, forged), forged, index),
        )
    assert_fails_at(db, index)
    assert_fails_at(db, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("renumber", [False, True], ids=["gap", "renumbered"])
@pytest.mark.parametrize("index", [0, 3, N - 2])
def test_a_deleted_row_is_caught_where_it_was(db: Path, index: int, renumber: bool) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq = ?", (index,))
        if renumber:  # close the gap in the seq column too
            for seq in range(index + 1, N):
                conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq - 1, seq))
    assert_fails_at(db, index)
    assert_fails_at(db, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize(("i", "j"), [(0, 1), (2, 5), (N - 2, N - 1)])
def test_two_swapped_rows_are_caught_at_the_first(db: Path, i: int, j: int) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        (hi, bi), (hj, bj) = row(conn, i), row(conn, j)
        conn.execute("UPDATE audit SET hash = ?, body = ? WHERE seq = ?", (hj, bj, i))
        conn.execute("UPDATE audit SET hash = ?, body = ? WHERE seq = ?", (hi, bi, j))
    assert_fails_at(db, i)
    assert_fails_at(db, i, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("keep", [0, 1, 5, N - 1])
def test_a_truncated_tail_is_caught_only_against_the_checkpoint(db: Path, keep: int) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq >= ?", (keep,))
    assert verify_file(db).ok
    assert_fails_at(db, keep, cp)


@pytest.mark.requirement("G12")
def test_a_truncated_tail_regrown_through_the_store_is_caught_at_the_checkpoint_head(
    db: Path,
) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq >= 5")
    store = SQLiteStore(db)
    try:
        store.append([entry(100 + i) for i in range(5, N)])
    finally:
        store.close()
    assert verify_file(db).ok
    assert_fails_at(db, N - 1, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize(
    ("body", "own_hash"),
    [
        (b"{not json", True),
        (b"{not json", False),
        (b"\xff\xfe\x00", True),
        (b"null", True),
        (canonical_json({"seq": N, "prev": "f" * 64}), True),
    ],
    ids=["invalid-json", "invalid-json-bad-hash", "not-utf8", "null", "wrong-prev"],
)
def test_an_appended_garbage_row_is_caught_at_its_position(
    db: Path, body: bytes, own_hash: bool
) -> None:
    cp = checkpoint_of(db)
    with tamper(db) as conn:
        conn.execute(
            "INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
            (N, digest(AUDIT_DOMAIN, body) if own_hash else "0" * 64, body),
        )
    assert_fails_at(db, N)
    assert_fails_at(db, N, cp)


@pytest.mark.requirement("G12")
@pytest.mark.parametrize(
    "values",
    ["(8, 'deadbeef', 'not json')", "(8, 123, x'00')", "(8, NULL, x'7b7d')"],
    ids=["text-body", "integer-hash", "null-hash"],
)
def test_an_appended_row_of_the_wrong_sqlite_types_is_caught_at_its_position(
    db: Path, values: str
) -> None:
    # The table declares hash TEXT NOT NULL, body BLOB NOT NULL; an intruder can drop
    # and recreate it without the constraints, and SQLite stores any type in any column.
    with tamper(db) as conn:
        conn.execute("ALTER TABLE audit RENAME TO old")
        conn.execute("CREATE TABLE audit (seq INTEGER PRIMARY KEY, hash, body)")
        conn.execute("INSERT INTO audit SELECT * FROM old")
        conn.execute("DROP TABLE old")
        conn.execute(f"INSERT INTO audit (seq, hash, body) VALUES {values}")
    assert_fails_at(db, N)


@pytest.mark.requirement("G12")
def test_a_correctly_sealed_row_with_a_wrong_prev_appended_is_caught_at_its_position(
    db: Path,
) -> None:
    forged = seal(entry(N), N, "f" * 64)
    with tamper(db) as conn:
        conn.execute(
            "INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)", (N, forged.hash, forged.raw)
        )
    assert_fails_at(db, N)


# -- Hypothesis: one random mutation of a random file ----------------------------

MUTATIONS = ["flip", "edit", "wrong_prev", "delete", "swap", "truncate", "append"]


def _mutate(conn: sqlite3.Connection, n: int, mutation: str, data: st.DataObject) -> int:
    """Apply `mutation` to the file's rows; return the index verify must name."""
    i = data.draw(st.integers(0, n - 1), label="index")
    if mutation == "flip":
        _, body = row(conn, i)
        raw = bytearray(body)
        raw[data.draw(st.integers(0, len(raw) - 1), label="byte")] ^= 1 << data.draw(
            st.integers(0, 7), label="bit"
        )
        conn.execute("UPDATE audit SET body = ? WHERE seq = ?", (bytes(raw), i))
        return i
    if mutation == "edit":
        _, body = row(conn, i)
        changed = canonical_json({**json.loads(body), "detail": {"forged": True}})
        conn.execute("UPDATE audit SET body = ? WHERE seq = ?", (changed, i))
        return i
    if mutation == "wrong_prev":
        _, body = row(conn, i)
        forged = canonical_json({**json.loads(body), "prev": "e" * 64})
        conn.execute(
            "UPDATE audit SET hash = ?, body = ? WHERE seq = ?",
            (digest(AUDIT_DOMAIN, forged), forged, i),
        )
        return i
    if mutation == "delete":
        conn.execute("DELETE FROM audit WHERE seq = ?", (i,))
        return i
    if mutation == "swap":
        j = data.draw(st.integers(0, n - 1).filter(lambda k: k != i), label="other")
        i, j = min(i, j), max(i, j)
        (hi, bi), (hj, bj) = row(conn, i), row(conn, j)
        conn.execute("UPDATE audit SET hash = ?, body = ? WHERE seq = ?", (hj, bj, i))
        conn.execute("UPDATE audit SET hash = ?, body = ? WHERE seq = ?", (hi, bi, j))
        return i
    if mutation == "truncate":
        conn.execute("DELETE FROM audit WHERE seq >= ?", (i,))
        return i
    garbage = data.draw(st.binary(max_size=32), label="garbage")
    conn.execute(
        "INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
        (n, digest(AUDIT_DOMAIN, garbage), garbage),
    )
    return n


@pytest.mark.requirement("G12")
@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 10),
    mutation=st.sampled_from(MUTATIONS),
    data=st.data(),
)
def test_any_single_mutation_of_a_random_file_is_caught_at_the_mutated_index(
    n: int, mutation: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        store = SQLiteStore(path)
        try:
            batches = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n), label="sizes")
            i = 0
            while i < n:
                size = min(batches[i], n - i)
                store.append([entry(k) for k in range(i, i + size)])
                i += size
            cp = store.checkpoint()
        finally:
            store.close()
        with tamper(path) as conn:
            index = _mutate(conn, n, mutation, data)

        result = verify_file(path, cp)
        assert (result.ok, result.first_bad) == (False, index)
        if mutation == "truncate" or (mutation == "delete" and index == n - 1):
            assert verify_file(path).ok
        else:
            assert (verify_file(path).ok, verify_file(path).first_bad) == (False, index)


# -- one unforked chain under concurrency --------------------------------------------


def assert_one_chain(path: Path, writers: int, batches: int, size: int) -> None:
    """The file verifies, holds every record once, and each batch is contiguous."""
    store = SQLiteStore(path)
    try:
        records = list(store.records())
    finally:
        store.close()
    result = verify(records)
    assert result.ok, result
    assert result.size == writers * batches * size
    assert [r.seq for r in records] == list(range(len(records)))
    assert len({r.body["prev"] for r in records}) == len(records), "two records share a parent"
    tags = [(r.body["detail"]["w"], r.body["detail"]["b"], r.body["detail"]["k"]) for r in records]
    assert sorted(tags) == [
        (w, b, k) for w in range(writers) for b in range(batches) for k in range(size)
    ]
    for start in range(0, len(tags), size):
        w, b, _ = tags[start]
        assert tags[start : start + size] == [(w, b, k) for k in range(size)], "a torn batch"


def batch(w: int, b: int, size: int) -> list[AuditEntry]:
    return [
        AuditEntry(kind="event", call=f"{w}-{b}", time=0.0, detail={"w": w, "b": b, "k": k})
        for k in range(size)
    ]


@pytest.mark.requirement("G12")
@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_concurrent_appends_from_threads_form_one_unforked_chain(
    tmp_path: Path, shared: bool
) -> None:
    writers, batches, size = 6, 25, 3
    path = tmp_path / "audit.db"
    stores = [SQLiteStore(path, timeout=BOUND)]
    stores += [SQLiteStore(path, timeout=BOUND) for _ in range(writers - 1) if not shared]
    barrier = threading.Barrier(writers, timeout=BOUND)
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            store = stores[0] if shared else stores[w]
            barrier.wait()
            for b in range(batches):
                store.append(batch(w, b, size))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    for s in stores:
        s.close()

    assert not [t for t in threads if t.is_alive()]
    assert errors == []
    assert_one_chain(path, writers, batches, size)


WRITER = """
import sys
from warded import AuditEntry, SQLiteStore
path, w, batches, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
store = SQLiteStore(path, timeout=30)
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(2)
for b in range(batches):
    store.append([
        AuditEntry(kind="event", call=f"{w}-{b}", time=0.0, detail={"w": w, "b": b, "k": k})
        for k in range(size)
    ])
store.close()
print("done", flush=True)
"""


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    assert ready, "a writer process did not answer in time"
    return proc.stdout.readline()


@pytest.mark.requirement("G12")
def test_concurrent_appends_from_processes_form_one_unforked_chain(tmp_path: Path) -> None:
    writers, batches, size = 3, 40, 3
    path = tmp_path / "audit.db"
    SQLiteStore(path).close()  # create the file and table before the race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(w), str(batches), str(size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(writers)
    ]
    deadline = time.monotonic() + BOUND
    try:
        for p in procs:  # a barrier: every writer is connected before any writes
            assert _read_line(p, deadline) == b"ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            p.stdin.flush()
        for p in procs:
            out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            assert (p.returncode, out) == (0, b"done\n"), err.decode()
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, 9)
                p.wait(timeout=BOUND)

    assert_one_chain(path, writers, batches, size)


@pytest.mark.requirement("G11")
@pytest.mark.parametrize("failure", ["disk-full", "unserializable"])
def test_a_batch_that_fails_part_way_leaves_nothing_behind(tmp_path: Path, failure: str) -> None:
    store = SQLiteStore(tmp_path / "audit.db")
    try:
        store.append([entry(0)])
        before = store.checkpoint()
        db = store.connection
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        if failure == "disk-full":
            db.execute(f"PRAGMA max_page_count = {pages}")
            bad = AuditEntry(kind="event", call="x", time=0.0, detail={"pad": "x" * 20_000})
        else:
            bad = AuditEntry(kind="event", call="x", time=0.0, args={"not json": {1, 2}})

        with pytest.raises(WardedError):
            store.append([entry(1), bad])

        assert store.checkpoint() == before
        db.execute(f"PRAGMA max_page_count = {pages * 1000}")
        store.append([entry(1)])
        assert verify(store.records(), before).ok
        assert store.checkpoint().size == 2
    finally:
        store.close()


# -- durability without PRAGMA switching, and the file's schema version ------------------


@pytest.mark.requirement("G11")
def test_a_durable_commit_syncs_the_wal_and_no_transaction_switches_a_pragma(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "audit.db")
    synced: list[str] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    statements: list[str] = []
    store.connection.set_trace_callback(statements.append)
    monkeypatch.setattr(os, "fdatasync", spy)
    try:
        store.append([entry(0)])  # durable, the default
        after_durable = list(synced)
        with store.transaction(durable=False) as tx:
            tx.append([entry(1)])
        after_lax = list(synced)
    finally:
        store.connection.set_trace_callback(None)
        store.close()

    assert after_durable == [str(tmp_path / "audit.db-wal")]
    assert after_lax == after_durable, "a durable=False commit was synced"
    assert not [s for s in statements if "PRAGMA" in s.upper()]


def test_a_file_from_before_schema_versions_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE audit (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, body BLOB)")
    old.commit()
    old.close()

    store = SQLiteStore(path)
    try:
        store.append([entry(0)])
        version = store.connection.execute("PRAGMA user_version").fetchone()[0]
        assert verify(store.records()).ok
    finally:
        store.close()
    assert version >= 1


def test_a_file_from_a_newer_warded_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 1000")
    conn.close()

    with pytest.raises(WardedError, match="newer"):
        SQLiteStore(path)
