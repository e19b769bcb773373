"""The PostgreSQL store: several gate nodes share one truth.

Same port as the SQLite store (`warded.store`), for many stateless gate
nodes on one database: the audit chain, approvals, limit counters, used call
ids, session state and the live policy bundle are all in it.

Every writing transaction first locks the one row of `warded_head` (`SELECT
… FOR UPDATE`), which holds the chain's head and the live bundle version.
Writers therefore run one at a time across every node, the way SQLite's
`BEGIN IMMEDIATE` makes them: the chain has one order, each transaction sees
everything committed before it (so an approval is consumed once, a budget is
checked against every earlier reservation), no two writers can deadlock, and
the live bundle version a decision is checked against cannot change before
it commits. On one node, transactions share commits (group commit,
`warded.stores.batching`): one transaction per batch, each caller in its own
savepoint.

A batch holding a durable transaction commits with `synchronous_commit = on`
whatever the server's default; a batch of only `durable=False` transactions
(outcome records, releases) with `off`. Reads outside transactions come from
a connection pool and see only what is committed.

The schema is versioned and migrated only by `warded db migrate URL`
(`migrate`); a store refuses a database whose schema is older or newer than
its code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, suppress
from dataclasses import replace
from decimal import Decimal
from typing import Any

from warded.audit.record import GENESIS, AuditEntry, AuditRecord, Checkpoint, seal_all
from warded.errors import StoreError, WardedError
from warded.model import Remembered, SessionState, Source
from warded.obligations.approvals import Approval, Status
from warded.obligations.limits import Reservation
from warded.policy.source import BundleFiles
from warded.store import Tx, admit
from warded.stores.batching import MAX_BATCH, GroupCommit

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover - depends on the environment
    raise WardedError(
        "the PostgreSQL store needs the postgres extra: pip install 'warded[postgres]'"
    ) from None

CHANNEL = "warded_bundle"  # NOTIFY'd with the new version when a bundle is pushed
PAGE = 5000  # audit records read per round trip

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1
        "CREATE TABLE warded_head (id smallint PRIMARY KEY CHECK (id = 0),"
        " seq bigint NOT NULL, hash text NOT NULL, live text)",
        f"INSERT INTO warded_head VALUES (0, -1, '{GENESIS}', NULL)",
        "CREATE TABLE warded_audit (seq bigint PRIMARY KEY, hash text NOT NULL,"
        " body bytea NOT NULL)",
        "CREATE TABLE warded_counters (key text NOT NULL, win bigint NOT NULL,"
        " total numeric NOT NULL, PRIMARY KEY (key, win))",
        "CREATE TABLE warded_approvals (id text PRIMARY KEY, digest text NOT NULL,"
        " status text NOT NULL, created double precision NOT NULL, body text NOT NULL)",
        "CREATE INDEX warded_approvals_digest ON warded_approvals (digest, status, created)",
        "CREATE INDEX warded_approvals_status ON warded_approvals (status, created)",
        "CREATE TABLE warded_claims (key text PRIMARY KEY)",
        "CREATE TABLE warded_sessions (id text PRIMARY KEY, labels text[] NOT NULL,"
        " calls bigint NOT NULL)",
        "CREATE TABLE warded_bundles (version text PRIMARY KEY, files jsonb NOT NULL,"
        " pushed_at double precision NOT NULL, pushed_by text)",
    ),
    (  # 2: remembered sources (argument provenance)
        "ALTER TABLE warded_sessions ADD COLUMN remembered bigint NOT NULL DEFAULT 0",
        "ALTER TABLE warded_sessions ADD COLUMN overflowed boolean NOT NULL DEFAULT false",
        "ALTER TABLE warded_sessions ADD COLUMN kept bigint NOT NULL DEFAULT 0",
        "CREATE TABLE warded_session_sources (session text NOT NULL, seq bigint NOT NULL,"
        " name text NOT NULL, labels text NOT NULL, leaves text NOT NULL, size bigint NOT NULL,"
        " PRIMARY KEY (session, seq))",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# Defaults a URL can override: fail fast when the server is unreachable, and
# notice a dead peer within seconds instead of TCP's minutes.
DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}


def conninfo(url: str) -> str:
    """The URL with warded's connection defaults for what it does not set."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"not a PostgreSQL URL: {exc}") from None
    return make_conninfo("", **{**DEFAULTS, **params})


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """One autocommit connection with warded's defaults."""
    try:
        return psycopg.connect(conninfo(url), autocommit=True, prepare_threshold=1)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the database: {_one_line(exc)}") from None


def schema_version(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """The warded schema version in the connection's current schema; 0 if none."""
    found = conn.execute("SELECT to_regclass('warded_schema')").fetchone()
    if found is None or found[0] is None:
        return 0
    row = conn.execute("SELECT version FROM warded_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(url: str) -> tuple[int, int]:
    """Bring the database's warded schema up to this code's; (from, to) versions.

    Raises StoreError if the database is newer than the code.
    """
    with connect(url) as conn:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('warded.migrate'))")
                found = schema_version(conn)
                if found > SCHEMA_VERSION:
                    raise StoreError(_newer(found))
                if found == 0:
                    conn.execute("CREATE TABLE warded_schema (version integer NOT NULL)")
                    conn.execute("INSERT INTO warded_schema VALUES (0)")
                for statements in MIGRATIONS[found:]:
                    for statement in statements:
                        conn.execute(statement.encode())
                conn.execute("UPDATE warded_schema SET version = %s", (SCHEMA_VERSION,))
        except psycopg.Error as exc:
            raise StoreError(f"migration failed: {_one_line(exc)}") from None
    return found, SCHEMA_VERSION


class PostgresStore:
    """The transactional store in a PostgreSQL database migrated by `warded db migrate`."""

    shared = True  # no key file: every node is given the deployment's key (warded.keys)

    def __init__(self, url: str, *, pool_size: int = 4, batch: int = MAX_BATCH) -> None:
        """`pool_size`: connections for reads; `batch`: at most this many transactions
        share a commit (1: group commit off)."""
        self.url = url
        self._conninfo = conninfo(url)
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:  # fails fast
                found = schema_version(conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the database: {_one_line(exc)}") from None
        if found > SCHEMA_VERSION:
            raise StoreError(_newer(found))
        if found < SCHEMA_VERSION:
            raise StoreError(
                f"the database's warded schema is at version {found}, this warded needs "
                f"{SCHEMA_VERSION}: run `warded db migrate URL`"
            )
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "prepare_threshold": 1},
            open=False,
            name="warded",
            timeout=float(DEFAULTS["connect_timeout"]),
        )
        try:
            self._pool.open(wait=True, timeout=float(DEFAULTS["connect_timeout"]))
        except Exception as exc:
            self._pool.close()
            raise StoreError(f"cannot open the database: {_one_line(exc)}") from None
        self._writer = _Writer(self._conninfo)
        self._writes = GroupCommit(self._writer, errors=(psycopg.Error,), max_batch=batch)

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._writes.transaction(durable)

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        with self.transaction() as tx:
            return tx.append(entries)

    def records(self, start: int = 0) -> Iterator[AuditRecord]:
        first = self._read(
            "SELECT seq, hash, body FROM warded_audit WHERE seq >= %s ORDER BY seq LIMIT %s",
            (start, PAGE),
        )
        return self._pages(first)

    def _pages(self, rows: list[tuple[Any, ...]]) -> Iterator[AuditRecord]:
        while rows:
            for seq, h, body in rows:
                yield AuditRecord(int(seq), str(h), bytes(body))
            if len(rows) < PAGE:
                return
            rows = self._read(
                "SELECT seq, hash, body FROM warded_audit WHERE seq > %s ORDER BY seq LIMIT %s",
                (rows[-1][0], PAGE),
            )

    def checkpoint(self) -> Checkpoint:
        rows = self._read("SELECT seq, hash FROM warded_audit ORDER BY seq DESC LIMIT 1")
        return Checkpoint(int(rows[0][0]) + 1, rows[0][1]) if rows else Checkpoint(0, GENESIS)

    def counter(self, key: str, window: int) -> Decimal:
        rows = self._read(
            "SELECT total FROM warded_counters WHERE key = %s AND win = %s", (_safe(key), window)
        )
        return Decimal(rows[0][0]) if rows else Decimal(0)

    def session(self, session_id: str) -> SessionState:
        rows = self._read(
            "SELECT labels, calls, remembered, overflowed, kept FROM warded_sessions WHERE id = %s",
            (_safe(session_id),),
        )
        return _state(session_id, rows[0] if rows else None)

    def sources(self, session_id: str, after: int = 0) -> Remembered:
        rows = self._read(
            "SELECT s.remembered, s.overflowed,"
            " (SELECT min(seq) FROM warded_session_sources WHERE session = s.id),"
            " e.seq, e.name, e.labels, e.leaves FROM warded_sessions s"
            " LEFT JOIN warded_session_sources e ON e.session = s.id AND e.seq > %s"
            " WHERE s.id = %s ORDER BY e.seq",
            (after, _safe(session_id)),
        )
        if not rows:
            return Remembered(0, False, 1, ())
        version, overflowed, first = int(rows[0][0]), bool(rows[0][1]), rows[0][2]
        entries = tuple(
            (int(seq), Source(_unsafe(name), tuple(json.loads(labels)), tuple(json.loads(leaves))))
            for _, _, _, seq, name, labels, leaves in rows
            if seq is not None
        )
        return Remembered(
            version, overflowed, version + 1 if first is None else int(first), entries
        )

    def live(self) -> tuple[str, BundleFiles] | None:
        """The live bundle's version and files, if one was pushed."""
        rows = self._read(
            "SELECT b.version, b.files FROM warded_head h"
            " JOIN warded_bundles b ON b.version = h.live WHERE h.id = 0"
        )
        if not rows:
            return None
        return str(rows[0][0]), files_from_json(rows[0][1])

    def live_version(self) -> str | None:
        """The live bundle's version as committed now, if one was pushed."""
        rows = self._read("SELECT live FROM warded_head WHERE id = 0")
        return rows[0][0] if rows else None

    def close(self) -> None:
        self._writer.close()
        self._pool.close()

    def _read(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read on a pooled connection. A connection found broken (the server
        restarted, the network dropped) is discarded by the pool and the read is
        tried again on another, so a node recovers once the database is back."""
        for _ in range(self._pool.max_size + 1):
            try:
                with self._pool.connection() as conn:
                    try:
                        return conn.execute(query.encode(), params).fetchall()
                    except psycopg.OperationalError:
                        if not conn.broken:
                            raise
            except Exception as exc:
                raise StoreError(f"database read failed: {_one_line(exc)}") from None
        raise StoreError("database read failed: every connection was lost")


class _Writer:
    """The node's writer connection as group commit drives it.

    A batch that others wait to join runs in pipeline mode: statements whose
    answer nobody waits for (savepoints, appends, updates) are sent without
    waiting, and travel with the next statement whose answer is needed, or
    with the commit (a lone caller is faster without it). Text keys
    are escaped (`_safe`), so such a statement cannot fail on what a caller
    chose; if one fails anyway (the server, the network), the batch fails.
    The first member of a transaction needs no savepoint: if it fails, the
    whole transaction, holding nothing else, is rolled back.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self.conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._pipeline: psycopg.Pipeline | None = None
        self._batch = ExitStack()  # leaves pipeline mode
        self._head_row: psycopg.Cursor[tuple[Any, ...]] | None = None  # not read yet
        self._head: tuple[int, str] | None = None
        self._kept: tuple[int, str] | None = None  # the head after the last kept member
        self._began: tuple[int, str] | None = None  # the head when the transaction began
        self._live: str | None = None
        self._fresh = False  # the next member begins the transaction
        self._crowded = False  # others wait to join the batch: pipeline mode
        self._first = False  # the member in progress began it
        self._release = False  # the last member's savepoint awaits its RELEASE

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = self.conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            self.conn = None
            conn = psycopg.connect(self._conninfo, autocommit=True, prepare_threshold=1)
            conn.execute(b"SET synchronous_commit = on")
            self.conn = conn
        return conn

    def _send(self, *statements: bytes) -> psycopg.Cursor[tuple[Any, ...]]:
        """Statements without parameters: queued one by one in pipeline mode, else sent
        as one script (one round trip); the cursor is on the last one's result."""
        assert self.conn is not None
        if self._pipeline is not None:
            for statement in statements:
                cursor = self.conn.execute(statement)
            return cursor
        cursor = self.conn.execute(b"; ".join(statements))
        while cursor.nextset():
            pass
        return cursor

    def head(self) -> tuple[int, str]:
        """The chain's head as of this point of the transaction."""
        if self._head_row is not None:
            row = self._head_row.fetchone()
            self._head_row = None
            if row is None:
                raise StoreError("the database has no chain head row: is it a warded database?")
            self._head = self._kept = self._began = (int(row[0]), str(row[1]))
            self._live = row[2]
        assert self._head is not None
        return self._head

    def moved(self, head: tuple[int, str]) -> None:
        self._head = head

    def live(self) -> str | None:
        self.head()
        return self._live

    def made_live(self, version: str) -> None:
        self.head()
        self._live = version

    def begin(self, crowded: bool) -> None:
        self._fresh = True
        self._crowded = crowded

    def enter(self) -> Tx:
        try:
            if self._fresh:
                conn = self._connection()
                if self._crowded:
                    self._pipeline = self._batch.enter_context(conn.pipeline())
                self._head_row = self._send(
                    b"BEGIN", b"SELECT seq, hash, live FROM warded_head WHERE id = 0 FOR UPDATE"
                )
                self._fresh, self._first = False, True
            elif self._release:
                self._send(b"RELEASE SAVEPOINT member", b"SAVEPOINT member")
                self._first = False
            else:
                self._send(b"SAVEPOINT member")
                self._first = False
        except psycopg.Error as exc:
            raise StoreError(f"cannot begin a transaction: {_one_line(exc)}") from None
        self._release = False
        assert self.conn is not None
        return _PostgresTx(self.conn, self)

    def keep(self) -> None:
        self._release = not self._first
        self._kept = self._head

    def undo(self) -> None:
        self._head = self._kept
        try:
            if self._first:
                self._send(b"ROLLBACK")
                self._end_pipeline()
                self._fresh = True
            else:
                self._send(b"ROLLBACK TO SAVEPOINT member", b"RELEASE SAVEPOINT member")
                if self._pipeline is not None:
                    self._pipeline.sync()
        except psycopg.Error as exc:
            raise StoreError(f"rollback failed: {_one_line(exc)}") from None

    def commit(self, durable: bool) -> Callable[[], None] | None:
        statements = [b"RELEASE SAVEPOINT member"] if self._release else []
        if self._head != self._began and self._head is not None:
            seq, head = self._head
            if not _HEX64.fullmatch(head):  # pragma: no cover - sealing makes hex digests
                raise StoreError("the chain's head is not a digest")
            statements.append(
                b"UPDATE warded_head SET seq = %d, hash = '%s' WHERE id = 0" % (seq, head.encode())
            )
        if not durable:
            statements.append(b"SET LOCAL synchronous_commit TO off")
        try:
            committed = self._send(*statements, b"COMMIT")
            self._end_pipeline()
        except psycopg.Error as exc:
            raise StoreError(f"commit failed: {_one_line(exc)}") from None
        if committed.statusmessage != "COMMIT":
            raise StoreError(f"commit failed: the server answered {committed.statusmessage}")
        return None

    def _end_pipeline(self) -> None:
        self._pipeline = self._head_row = self._head = self._kept = self._began = None
        self._release = self._fresh = False
        self._batch.close()

    def abort(self) -> None:
        conn = self.conn
        try:
            self._end_pipeline()
            if conn is not None:
                conn.execute(b"ROLLBACK")
        except Exception:
            self.close()

    def close(self) -> None:
        self._pipeline = None
        self._batch = ExitStack()  # whatever it held goes with the connection
        if self.conn is not None:
            with suppress(Exception):
                self.conn.close()
            self.conn = None


class _PostgresTx:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], writer: _Writer) -> None:
        self.conn = conn
        self.writer = writer
        self._sessions: dict[str, SessionState] = {}  # read or written by this member

    def _one(self, query: bytes, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self.conn.execute(query, params).fetchone()

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        seq, head = self.writer.head()
        try:
            sealed = seal_all(entries, seq + 1, head)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"cannot seal audit entries: {exc}") from None
        if not sealed:
            return sealed
        for r in sealed:  # the head row is written once, at commit
            self.conn.execute(
                b"INSERT INTO warded_audit (seq, hash, body) VALUES (%s, %s, %s)",
                (r.seq, r.hash, r.raw),
            )
        self.writer.moved((sealed[-1].seq, sealed[-1].hash))
        return sealed

    def live_version(self) -> str | None:
        return self.writer.live()

    def make_live(self, version: str, files: BundleFiles, *, at: float, by: str | None) -> None:
        """Store a bundle and make it the live one for every node (notified at commit)."""
        self.writer.made_live(version)
        self.conn.execute(
            b"INSERT INTO warded_bundles (version, files, pushed_at, pushed_by)"
            b" VALUES (%s, %s, %s, %s) ON CONFLICT (version) DO NOTHING",
            (version, json.dumps(files_to_json(files)), at, None if by is None else _safe(by)),
        )
        self.conn.execute(b"UPDATE warded_head SET live = %s WHERE id = 0", (version,))
        self.conn.execute(b"SELECT pg_notify(%s, %s)", (CHANNEL, version))

    def reserve(self, reservation: Reservation) -> bool:
        if reservation.amount > reservation.limit:
            return False
        row = self._one(
            b"INSERT INTO warded_counters AS c (key, win, total) VALUES (%s, %s, %s)"
            b" ON CONFLICT (key, win) DO UPDATE SET total = c.total + excluded.total"
            b" WHERE c.total + excluded.total <= %s RETURNING total",
            (_safe(reservation.key), reservation.window, reservation.amount, reservation.limit),
        )
        return row is not None

    def release(self, reservation: Reservation) -> None:
        self.conn.execute(
            b"INSERT INTO warded_counters AS c (key, win, total) VALUES (%s, %s, 0)"
            b" ON CONFLICT (key, win) DO UPDATE SET total = GREATEST(0, c.total - %s)",
            (_safe(reservation.key), reservation.window, reservation.amount),
        )

    def claim(self, key: str) -> bool:
        row = self._one(
            b"INSERT INTO warded_claims (key) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1",
            (_safe(key),),
        )
        return row is not None

    def approval(self, approval_id: str) -> Approval | None:
        row = self._one(b"SELECT body FROM warded_approvals WHERE id = %s", (_safe(approval_id),))
        return Approval.from_json(json.loads(row[0])) if row else None

    def approval_for(self, digest: str, status: Status) -> Approval | None:
        row = self._one(
            b"SELECT body FROM warded_approvals WHERE digest = %s AND status = %s"
            b" ORDER BY created DESC LIMIT 1",
            (_safe(digest), status),
        )
        return Approval.from_json(json.loads(row[0])) if row else None

    def put_approval(self, approval: Approval) -> None:
        self.conn.execute(
            b"INSERT INTO warded_approvals (id, digest, status, created, body)"
            b" VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id)"
            b" DO UPDATE SET status = excluded.status, body = excluded.body",
            (
                _safe(approval.id),
                _safe(approval.digest),
                approval.status,
                approval.created,
                json.dumps(approval.to_json(), sort_keys=True),
            ),
        )

    def approvals(self, status: Status | None = None) -> list[Approval]:
        if status is None:
            rows = self.conn.execute(b"SELECT body FROM warded_approvals ORDER BY created")
        else:
            rows = self.conn.execute(
                b"SELECT body FROM warded_approvals WHERE status = %s ORDER BY created", (status,)
            )
        return [Approval.from_json(json.loads(r[0])) for r in rows.fetchall()]

    def session(self, session_id: str) -> SessionState:
        state = self._sessions.get(session_id)
        if state is None:
            row = self._one(
                b"SELECT labels, calls, remembered, overflowed, kept"
                b" FROM warded_sessions WHERE id = %s",
                (_safe(session_id),),
            )
            state = self._sessions[session_id] = _state(session_id, row)
        return state

    def update_session(
        self, session_id: str, *, labels: Iterable[str] = (), calls: int = 0
    ) -> SessionState:
        added = sorted({_safe(label) for label in labels})
        query = (
            b"INSERT INTO warded_sessions AS s (id, labels, calls) VALUES (%s, %s, %s)"
            b" ON CONFLICT (id) DO UPDATE SET"
            b" labels = ARRAY(SELECT DISTINCT unnest(s.labels || excluded.labels) ORDER BY 1),"
            b" calls = s.calls + excluded.calls"
        )
        params = (_safe(session_id), added, calls)
        known = self._sessions.get(session_id)
        if known is None:  # what it becomes is not known here: ask
            returning = b" RETURNING labels, calls, remembered, overflowed, kept"
            state = _state(session_id, self._one(query + returning, params))
        else:  # the writers' lock is held: it becomes exactly this
            self.conn.execute(query, params)
            state = replace(
                known, labels=known.labels | {_unsafe(a) for a in added}, calls=known.calls + calls
            )
        self._sessions[session_id] = state
        return state

    def remember(
        self,
        session_id: str,
        sources: Sequence[Source],
        *,
        limit: int,
        overflowed: bool = False,
    ) -> Remembered:
        key = _safe(session_id)
        state = self.session(session_id)
        plan = admit(state.kept, state.remembered, sources, limit, self._oldest(key))
        if plan.evicted:
            self.conn.execute(
                b"DELETE FROM warded_session_sources WHERE session = %s AND seq <= %s",
                (key, plan.evicted),
            )
        for seq, source in plan.added:
            self.conn.execute(
                b"INSERT INTO warded_session_sources (session, seq, name, labels, leaves, size)"
                b" VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    key,
                    seq,
                    _safe(source.name),
                    json.dumps(source.labels),
                    json.dumps(source.leaves),
                    source.size,
                ),
            )
        state = replace(
            state,
            remembered=plan.version,
            overflowed=state.overflowed or overflowed or plan.lost,
            kept=plan.kept,
        )
        self.conn.execute(
            b"INSERT INTO warded_sessions AS s (id, labels, calls, remembered, overflowed, kept)"
            b" VALUES (%s, '{}', 0, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
            b" remembered = excluded.remembered, overflowed = excluded.overflowed,"
            b" kept = excluded.kept",
            (key, state.remembered, state.overflowed, state.kept),
        )
        self._sessions[session_id] = state
        return plan.remembered(state)

    def _oldest(self, key: str) -> Iterator[tuple[int, int]]:
        """(number, size) of the session's kept sources, oldest first, read a page at a time."""
        after = 0
        while True:
            rows = self.conn.execute(
                b"SELECT seq, size FROM warded_session_sources WHERE session = %s AND seq > %s"
                b" ORDER BY seq LIMIT 64",
                (key, after),
            ).fetchall()
            for seq, size in rows:
                yield int(seq), int(size)
            if len(rows) < 64:
                return
            after = int(rows[-1][0])


def files_to_json(files: BundleFiles) -> dict[str, Any]:
    return {
        "policies": [list(p) for p in files.policies],
        "schema": list(files.schema),
        "entities": None if files.entities is None else list(files.entities),
    }


def files_from_json(data: Any) -> BundleFiles:
    entities = data.get("entities")
    return BundleFiles(
        tuple((str(n), str(t)) for n, t in data["policies"]),
        (str(data["schema"][0]), str(data["schema"][1])),
        None if entities is None else (str(entities[0]), str(entities[1])),
    )


def _state(session_id: str, row: tuple[Any, ...] | None) -> SessionState:
    if row is None:
        return SessionState(session_id)
    labels = frozenset(_unsafe(label) for label in row[0])
    return SessionState(session_id, labels, int(row[1]), int(row[2]), bool(row[3]), int(row[4]))


_HEX64 = re.compile(r"[0-9a-f]{64}")
_ESCAPED = re.compile(r"\\([\\0])")


def _safe(text: str) -> str:
    """Text as PostgreSQL can keep it (it refuses NUL): backslash and NUL escaped,
    reversibly, so every key means what it means in the other stores."""
    if "\x00" not in text and "\\" not in text:
        return text
    return text.replace("\\", "\\\\").replace("\x00", "\\0")


def _unsafe(text: str) -> str:
    """What `_safe` escaped, back."""
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else "\\", text)


def _newer(found: int) -> str:
    return (
        f"the database's warded schema is at version {found}, newer than this warded's "
        f"({SCHEMA_VERSION}): upgrade warded on this node"
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
