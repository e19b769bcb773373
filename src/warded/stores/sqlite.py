"""The SQLite audit store: one file, WAL, `synchronous=FULL`, `BEGIN IMMEDIATE` appends.

Appends from several threads or processes serialize on SQLite's write lock;
each append reads the head and writes the new records in one transaction, so
the chain never forks. A failed append leaves nothing behind.

Durability: every append that holds a decision or an event is committed with
`synchronous=FULL` (the WAL is fsynced before `append` returns, so a decision
is on disk before its tool runs). An append of outcome records only is
committed with `synchronous=NORMAL`: it survives a process crash at once, and
a power loss only after the next FULL commit (which fsyncs the WAL, and with
it every earlier frame). An outcome lost that way leaves its call visibly
"outcome unknown" — the state G11 already allows between decision and outcome.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from warded.audit.record import GENESIS, AuditEntry, AuditRecord, Checkpoint, seal_all
from warded.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq  INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    body BLOB NOT NULL
)
"""


class SQLiteAuditStore:
    """Audit chain in a SQLite file (created if missing)."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open audit database {self.path}: {exc}") from None
        self._lock = threading.Lock()
        self._relaxed = False

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        with self._lock:
            db = self._db
            relaxed = all(e.kind == "outcome" for e in entries)
            try:
                if relaxed != self._relaxed:
                    db.execute(f"PRAGMA synchronous={'NORMAL' if relaxed else 'FULL'}")
                    self._relaxed = relaxed
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute(
                        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    seq, head = (row[0] + 1, row[1]) if row else (0, GENESIS)
                    sealed = seal_all(entries, seq, head)
                    db.executemany(
                        "INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
                        [(r.seq, r.hash, r.raw) for r in sealed],
                    )
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, ValueError, TypeError) as exc:
                raise StoreError(f"audit append failed: {exc}") from None
            return sealed

    def records(self, start: int = 0) -> Iterator[AuditRecord]:
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, hash, body FROM audit WHERE seq >= ? ORDER BY seq", (start,)
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"audit read failed: {exc}") from None
        return (AuditRecord(seq, str(h), _raw(body)) for seq, h, body in rows)

    def checkpoint(self) -> Checkpoint:
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"audit read failed: {exc}") from None
        return Checkpoint(row[0] + 1, row[1]) if row else Checkpoint(0, GENESIS)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _raw(body: object) -> bytes:
    """A stored body as bytes, whatever type an outside edit left in the column."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8", "surrogateescape")
    return repr(body).encode()
