"""The SQLite store: one file, WAL, group commit, `BEGIN IMMEDIATE` transactions.

The audit chain, approvals, limit counters, used call ids and session state
share one file, so one SQLite transaction covers a decision record together
with the approval it consumes and the limits it reserves. Transactions of one
store share commits (`warded.stores.batching`); transactions from several
stores or processes serialize on SQLite's write lock. Each reads the chain's
head inside the transaction, so the chain never forks. A failed transaction
leaves nothing behind. Reads outside transactions use a second connection
and see only what is committed.

Durability: the writer connection runs with `synchronous=NORMAL` and never
switches. A batch holding a durable transaction (a decision: the default) is
made durable by `fdatasync` of the WAL after its commit — what
`synchronous=FULL` does inside the commit, done once per batch and outside the
write lock, so the next batch can commit meanwhile; no caller of the batch
returns before it. A batch of only `durable=False` transactions (outcome
records and the release of reservations) is not synced: it survives a process
crash at once, and a power loss from the next durable commit on (which syncs
the WAL and every earlier frame). What such a loss can leave is a call
visibly "outcome unknown" with its reservation still counted — never an
unlogged action or an overspend.

The file's schema is versioned (`PRAGMA user_version`) and brought up to date
when a store opens it; a file from a newer warded is refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from warded.audit.record import GENESIS, AuditEntry, AuditRecord, Checkpoint, seal_all
from warded.errors import StoreError
from warded.model import Remembered, SessionState, Source
from warded.obligations.approvals import Approval, Status
from warded.obligations.limits import Reservation
from warded.store import Tx, admit
from warded.stores.batching import MAX_BATCH, GroupCommit

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the tables as first shipped (files from before versioning have them)
        "CREATE TABLE IF NOT EXISTS audit ("
        " seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, body BLOB NOT NULL)",
        "CREATE TABLE IF NOT EXISTS counters (key TEXT NOT NULL, window INTEGER NOT NULL,"
        " total TEXT NOT NULL, PRIMARY KEY (key, window))",
        "CREATE TABLE IF NOT EXISTS approvals ("
        " id TEXT PRIMARY KEY, digest TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL,"
        " body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS approvals_digest ON approvals (digest, status)",
        "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY)",
        "CREATE TABLE IF NOT EXISTS sessions ("
        " id TEXT PRIMARY KEY, labels TEXT NOT NULL, calls INTEGER NOT NULL)",
    ),
    (  # 2: remembered sources (argument provenance)
        "ALTER TABLE sessions ADD COLUMN remembered INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN overflowed INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN kept INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE session_sources (session TEXT NOT NULL, seq INTEGER NOT NULL,"
        " name TEXT NOT NULL, labels TEXT NOT NULL, leaves TEXT NOT NULL, size INTEGER NOT NULL,"
        " PRIMARY KEY (session, seq))",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class SQLiteStore:
    """The transactional store in a SQLite file (created if missing)."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0, batch: int = MAX_BATCH) -> None:
        """`batch`: at most this many transactions share a commit (1: group commit off)."""
        self.path = str(path)
        try:
            self._db = _connect(self.path, timeout)
            _wal(self._db, timeout)
            self._db.execute("PRAGMA synchronous=NORMAL")
            _migrate(self._db, self.path)
            self._reader = self._db if self.path == ":memory:" else _connect(self.path, timeout)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        self._read_lock = threading.Lock()
        self._wal_fd: int | None = None
        self._writes = GroupCommit(_Writer(self), errors=(sqlite3.Error,), max_batch=batch)

    @property
    def connection(self) -> sqlite3.Connection:
        """The writer connection."""
        return self._db

    @property
    def key_file(self) -> Path | None:
        """Where the deployment key lives by default (`warded.keys`): beside the
        database, never inside it."""
        return None if self.path == ":memory:" else Path(self.path + ".key")

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._writes.transaction(durable)

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        with self.transaction() as tx:
            return tx.append(entries)

    def records(self, start: int = 0) -> Iterator[AuditRecord]:
        rows = self._read(
            "audit read", "SELECT seq, hash, body FROM audit WHERE seq >= ? ORDER BY seq", (start,)
        )
        return (AuditRecord(seq, str(h), _raw(body)) for seq, h, body in rows)

    def checkpoint(self) -> Checkpoint:
        rows = self._read("audit read", "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return Checkpoint(rows[0][0] + 1, rows[0][1]) if rows else Checkpoint(0, GENESIS)

    def counter(self, key: str, window: int) -> Decimal:
        rows = self._read(
            "counter read",
            "SELECT total FROM counters WHERE key = ? AND window = ?",
            (key, window),
        )
        return Decimal(rows[0][0]) if rows else Decimal(0)

    def session(self, session_id: str) -> SessionState:
        try:
            with self._read_lock:
                return _session(self._reader, session_id)
        except sqlite3.Error as exc:
            raise StoreError(f"session read failed: {exc}") from None

    def sources(self, session_id: str, after: int = 0) -> Remembered:
        rows = self._read("sources read", _SOURCES, (after, session_id))
        return _remembered(session_id, rows)

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        self._db.close()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None

    def _read(self, what: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._read_lock:
                rows: list[tuple[Any, ...]] = self._reader.execute(sql, params).fetchall()
                return rows
        except sqlite3.Error as exc:
            raise StoreError(f"{what} failed: {exc}") from None

    def _sync_wal(self) -> None:
        """fdatasync the WAL: every frame committed so far is on disk when this returns."""
        if self._wal_fd is None:
            wal = self.path + "-wal"
            if self.path == ":memory:" or not os.path.exists(wal):
                return
            self._wal_fd = os.open(wal, os.O_RDONLY)
        try:
            os.fdatasync(self._wal_fd)
        except OSError as exc:
            raise StoreError(f"cannot sync the write-ahead log: {exc}") from None


class _Writer:
    """The writer connection as group commit drives it (`warded.stores.batching.Writer`).

    The first member of a transaction needs no savepoint: if it fails, the
    whole transaction, holding nothing else, is rolled back.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._fresh = False  # the next member begins the transaction
        self._first = False  # the member in progress began it

    def _do(self, what: str, *statements: str) -> None:
        try:
            for statement in statements:
                self.store._db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(f"{what} failed: {exc}") from None

    def begin(self, crowded: bool) -> None:
        self._fresh = True

    def enter(self) -> Tx:
        if self._fresh:
            self._do("begin", "BEGIN IMMEDIATE")
            self._fresh, self._first = False, True
        else:
            self._do("savepoint", "SAVEPOINT member")
            self._first = False
        return _SQLiteTx(self.store._db)

    def keep(self) -> None:
        if not self._first:
            self._do("release", "RELEASE member")

    def undo(self) -> None:
        if self._first:
            self._do("rollback", "ROLLBACK")
            self._fresh = True
        else:
            self._do("rollback", "ROLLBACK TO member", "RELEASE member")

    def commit(self, durable: bool) -> Callable[[], None] | None:
        self._do("store transaction", "COMMIT")
        return self.store._sync_wal if durable else None

    def abort(self) -> None:
        self._fresh = False
        db = self.store._db
        with suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")


class _SQLiteTx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        row = self.db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, head = (row[0] + 1, row[1]) if row else (0, GENESIS)
        try:
            sealed = seal_all(entries, seq, head)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"cannot seal audit entries: {exc}") from None
        self.db.executemany(
            "INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
            [(r.seq, r.hash, r.raw) for r in sealed],
        )
        return sealed

    def live_version(self) -> str | None:
        return None

    def _total(self, key: str, window: int) -> Decimal:
        row = self.db.execute(
            "SELECT total FROM counters WHERE key = ? AND window = ?", (key, window)
        ).fetchone()
        return Decimal(row[0]) if row else Decimal(0)

    def _set(self, key: str, window: int, total: Decimal) -> None:
        self.db.execute(
            "INSERT INTO counters (key, window, total) VALUES (?, ?, ?) "
            "ON CONFLICT (key, window) DO UPDATE SET total = excluded.total",
            (key, window, str(total)),
        )

    def reserve(self, reservation: Reservation) -> bool:
        total = self._total(reservation.key, reservation.window) + reservation.amount
        if total > reservation.limit:
            return False
        self._set(reservation.key, reservation.window, total)
        return True

    def release(self, reservation: Reservation) -> None:
        total = self._total(reservation.key, reservation.window) - reservation.amount
        self._set(reservation.key, reservation.window, max(Decimal(0), total))

    def claim(self, key: str) -> bool:
        cursor = self.db.execute("INSERT OR IGNORE INTO claims (key) VALUES (?)", (key,))
        return cursor.rowcount == 1

    def approval(self, approval_id: str) -> Approval | None:
        row = self.db.execute("SELECT body FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return Approval.from_json(json.loads(row[0])) if row else None

    def approval_for(self, digest: str, status: Status) -> Approval | None:
        row = self.db.execute(
            "SELECT body FROM approvals WHERE digest = ? AND status = ? "
            "ORDER BY created DESC LIMIT 1",
            (digest, status),
        ).fetchone()
        return Approval.from_json(json.loads(row[0])) if row else None

    def put_approval(self, approval: Approval) -> None:
        self.db.execute(
            "INSERT INTO approvals (id, digest, status, created, body) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body",
            (
                approval.id,
                approval.digest,
                approval.status,
                approval.created,
                json.dumps(approval.to_json(), sort_keys=True),
            ),
        )

    def approvals(self, status: Status | None = None) -> list[Approval]:
        if status is None:
            rows = self.db.execute("SELECT body FROM approvals ORDER BY created").fetchall()
        else:
            rows = self.db.execute(
                "SELECT body FROM approvals WHERE status = ? ORDER BY created", (status,)
            ).fetchall()
        return [Approval.from_json(json.loads(r[0])) for r in rows]

    def session(self, session_id: str) -> SessionState:
        return _session(self.db, session_id)

    def update_session(
        self, session_id: str, *, labels: Iterable[str] = (), calls: int = 0
    ) -> SessionState:
        state = _session(self.db, session_id)
        state = replace(state, labels=state.labels | frozenset(labels), calls=state.calls + calls)
        _put_session(self.db, state)
        return state

    def remember(
        self,
        session_id: str,
        sources: Sequence[Source],
        *,
        limit: int,
        overflowed: bool = False,
    ) -> Remembered:
        state = _session(self.db, session_id)
        oldest = self.db.execute(
            "SELECT seq, size FROM session_sources WHERE session = ? ORDER BY seq", (session_id,)
        )  # read row by row, only as far as eviction needs
        try:
            plan = admit(state.kept, state.remembered, sources, limit, oldest)
        finally:
            oldest.close()
        if plan.evicted:
            self.db.execute(
                "DELETE FROM session_sources WHERE session = ? AND seq <= ?",
                (session_id, plan.evicted),
            )
        self.db.executemany(
            "INSERT INTO session_sources (session, seq, name, labels, leaves, size)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (session_id, seq, s.name, json.dumps(s.labels), json.dumps(s.leaves), s.size)
                for seq, s in plan.added
            ],
        )
        state = replace(
            state,
            remembered=plan.version,
            overflowed=state.overflowed or overflowed or plan.lost,
            kept=plan.kept,
        )
        _put_session(self.db, state)
        return plan.remembered(state)


def _session(db: sqlite3.Connection, session_id: str) -> SessionState:
    row = db.execute(
        "SELECT labels, calls, remembered, overflowed, kept FROM sessions WHERE id = ?",
        (session_id,),
    ).fetchone()
    if row is None:
        return SessionState(session_id)
    labels = frozenset(json.loads(row[0]))
    return SessionState(session_id, labels, int(row[1]), int(row[2]), bool(row[3]), int(row[4]))


def _put_session(db: sqlite3.Connection, state: SessionState) -> None:
    db.execute(
        "INSERT INTO sessions (id, labels, calls, remembered, overflowed, kept)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET labels = excluded.labels,"
        " calls = excluded.calls, remembered = excluded.remembered,"
        " overflowed = excluded.overflowed, kept = excluded.kept",
        (
            state.id,
            json.dumps(sorted(state.labels)),
            state.calls,
            state.remembered,
            int(state.overflowed),
            state.kept,
        ),
    )


# One statement, so the state and the sources are read from one snapshot.
_SOURCES = (
    "SELECT s.remembered, s.overflowed,"
    " (SELECT min(seq) FROM session_sources WHERE session = s.id),"
    " e.seq, e.name, e.labels, e.leaves"
    " FROM sessions s LEFT JOIN session_sources e ON e.session = s.id AND e.seq > ?"
    " WHERE s.id = ? ORDER BY e.seq"
)


def _remembered(session_id: str, rows: Sequence[tuple[Any, ...]]) -> Remembered:
    if not rows:
        return Remembered(0, False, 1, ())
    version, overflowed, first = int(rows[0][0]), bool(rows[0][1]), rows[0][2]
    entries = tuple(
        (int(seq), Source(str(name), tuple(json.loads(labels)), tuple(json.loads(leaves))))
        for _, _, _, seq, name, labels, leaves in rows
        if seq is not None
    )
    return Remembered(version, overflowed, version + 1 if first is None else int(first), entries)


def _connect(path: str, timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)


def _migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring the file's schema to SCHEMA_VERSION; refuse a file from a newer warded."""
    db.execute("BEGIN IMMEDIATE")
    try:
        found = int(db.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"store {path} has schema version {found}, newer than this warded's "
                f"({SCHEMA_VERSION}): upgrade warded to use it"
            )
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                db.execute(statement)
        if found < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _wal(db: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL, waiting up to `timeout` while another connection holds the file.

    SQLite answers a journal-mode change with "database is locked" at once,
    without its busy handler, while another connection writes a file that is
    not in WAL mode yet (several processes creating one store together).
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _raw(body: object) -> bytes:
    """A stored body as bytes, whatever type an outside edit left in the column."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8", "surrogateescape")
    return repr(body).encode()
