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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from decimal import Decimal
from typing import Any

from warded.audit.record import GENESIS, AuditEntry, AuditRecord, Checkpoint, seal_all
from warded.errors import StoreError, WardedError
from warded.model import SessionState
from warded.obligations.approvals import Approval, Status
from warded.obligations.limits import Reservation
from warded.policy.source import BundleFiles
from warded.store import Tx
from warded.stores.batching import GroupCommit

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

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
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
        self._writes = GroupCommit(self._writer, errors=(psycopg.Error,))

    shared = True  # no key file: every node is given the deployment's key (warded.keys)

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
            "SELECT total FROM warded_counters WHERE key = %s AND win = %s", (key, window)
        )
        return Decimal(rows[0][0]) if rows else Decimal(0)

    def session(self, session_id: str) -> SessionState:
        rows = self._read("SELECT labels, calls FROM warded_sessions WHERE id = %s", (session_id,))
        return _state(session_id, rows[0] if rows else None)

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

    The savepoint of a member that succeeded is released together with the
    next member's savepoint or the commit, to save a round trip.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._fresh = False  # begin() was called; the next enter() opens the transaction
        self._release = False  # the last member's savepoint awaits its RELEASE
        self.head: tuple[int, str] = (-1, GENESIS)
        self.kept: tuple[int, str] = (-1, GENESIS)  # the head after the last kept member
        self.live: str | None = None

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            self._conn = None
            conn = psycopg.connect(self._conninfo, autocommit=True, prepare_threshold=1)
            conn.execute("SET synchronous_commit = on")
            self._conn = conn
        return conn

    def _run(self, what: str, statement: str) -> psycopg.Cursor[tuple[Any, ...]]:
        try:
            return self._connection().execute(statement.encode())
        except psycopg.Error as exc:
            raise StoreError(f"{what} failed: {_one_line(exc)}") from None

    def begin(self) -> None:
        self._fresh = True

    def enter(self) -> Tx:
        if self._fresh:
            cursor = self._run(
                "begin",
                "BEGIN; SELECT seq, hash, live FROM warded_head WHERE id = 0 FOR UPDATE;"
                " SAVEPOINT member",
            )
            cursor.nextset()
            row = cursor.fetchone()
            if row is None:
                raise StoreError("the database has no chain head row: is it a warded database?")
            self.head = self.kept = (int(row[0]), str(row[1]))
            self.live = row[2]
            self._fresh = False
        elif self._release:
            self._run("savepoint", "RELEASE SAVEPOINT member; SAVEPOINT member")
        else:
            self._run("savepoint", "SAVEPOINT member")
        self._release = False
        assert self._conn is not None
        return _PostgresTx(self._conn, self)

    def keep(self) -> None:
        self._release = True
        self.kept = self.head

    def undo(self) -> None:
        self.head = self.kept
        self._run("rollback", "ROLLBACK TO SAVEPOINT member; RELEASE SAVEPOINT member")

    def commit(self, durable: bool) -> Callable[[], None] | None:
        statement = "RELEASE SAVEPOINT member; " if self._release else ""
        statement += "" if durable else "SET LOCAL synchronous_commit TO off; "
        self._release = False
        self._run("commit", statement + "COMMIT")
        return None

    def abort(self) -> None:
        self._fresh = self._release = False
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.broken or conn.closed:
                raise psycopg.OperationalError("connection lost")
            conn.execute(b"ROLLBACK")
        except Exception:
            self._conn = None
            with suppress(Exception):
                conn.close()

    def close(self) -> None:
        if self._conn is not None:
            with suppress(Exception):
                self._conn.close()
            self._conn = None


class _PostgresTx:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], writer: _Writer) -> None:
        self.conn = conn
        self.writer = writer

    def _one(self, query: bytes, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self.conn.execute(query, params).fetchone()

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        seq, head = self.writer.head
        try:
            sealed = seal_all(entries, seq + 1, head)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"cannot seal audit entries: {exc}") from None
        if not sealed:
            return sealed
        last = sealed[-1]
        self.conn.execute(
            b"WITH added AS (INSERT INTO warded_audit (seq, hash, body)"
            b" SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bytea[]))"
            b" UPDATE warded_head SET seq = %s, hash = %s WHERE id = 0",
            (
                [r.seq for r in sealed],
                [r.hash for r in sealed],
                [r.raw for r in sealed],
                last.seq,
                last.hash,
            ),
        )
        self.writer.head = (last.seq, last.hash)
        return sealed

    def live_version(self) -> str | None:
        return self.writer.live

    def make_live(self, version: str, files: BundleFiles, *, at: float, by: str | None) -> None:
        """Store a bundle and make it the live one for every node (notified at commit)."""
        self.conn.execute(
            b"INSERT INTO warded_bundles (version, files, pushed_at, pushed_by)"
            b" VALUES (%s, %s, %s, %s) ON CONFLICT (version) DO NOTHING",
            (version, json.dumps(files_to_json(files)), at, by),
        )
        self.conn.execute(b"UPDATE warded_head SET live = %s WHERE id = 0", (version,))
        self.conn.execute(b"SELECT pg_notify(%s, %s)", (CHANNEL, version))
        self.writer.live = version

    def reserve(self, reservation: Reservation) -> bool:
        if reservation.amount > reservation.limit:
            return False
        row = self._one(
            b"INSERT INTO warded_counters AS c (key, win, total) VALUES (%s, %s, %s)"
            b" ON CONFLICT (key, win) DO UPDATE SET total = c.total + excluded.total"
            b" WHERE c.total + excluded.total <= %s RETURNING total",
            (reservation.key, reservation.window, reservation.amount, reservation.limit),
        )
        return row is not None

    def release(self, reservation: Reservation) -> None:
        self.conn.execute(
            b"INSERT INTO warded_counters AS c (key, win, total) VALUES (%s, %s, 0)"
            b" ON CONFLICT (key, win) DO UPDATE SET total = GREATEST(0, c.total - %s)",
            (reservation.key, reservation.window, reservation.amount),
        )

    def claim(self, key: str) -> bool:
        cursor = self.conn.execute(
            b"INSERT INTO warded_claims (key) VALUES (%s) ON CONFLICT DO NOTHING", (key,)
        )
        return cursor.rowcount == 1

    def approval(self, approval_id: str) -> Approval | None:
        row = self._one(b"SELECT body FROM warded_approvals WHERE id = %s", (approval_id,))
        return Approval.from_json(json.loads(row[0])) if row else None

    def approval_for(self, digest: str, status: Status) -> Approval | None:
        row = self._one(
            b"SELECT body FROM warded_approvals WHERE digest = %s AND status = %s"
            b" ORDER BY created DESC LIMIT 1",
            (digest, status),
        )
        return Approval.from_json(json.loads(row[0])) if row else None

    def put_approval(self, approval: Approval) -> None:
        self.conn.execute(
            b"INSERT INTO warded_approvals (id, digest, status, created, body)"
            b" VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id)"
            b" DO UPDATE SET status = excluded.status, body = excluded.body",
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
            rows = self.conn.execute(b"SELECT body FROM warded_approvals ORDER BY created")
        else:
            rows = self.conn.execute(
                b"SELECT body FROM warded_approvals WHERE status = %s ORDER BY created", (status,)
            )
        return [Approval.from_json(json.loads(r[0])) for r in rows.fetchall()]

    def session(self, session_id: str) -> SessionState:
        row = self._one(b"SELECT labels, calls FROM warded_sessions WHERE id = %s", (session_id,))
        return _state(session_id, row)

    def update_session(
        self, session_id: str, *, labels: Iterable[str] = (), calls: int = 0
    ) -> SessionState:
        row = self._one(
            b"INSERT INTO warded_sessions AS s (id, labels, calls) VALUES (%s, %s, %s)"
            b" ON CONFLICT (id) DO UPDATE SET"
            b" labels = ARRAY(SELECT DISTINCT unnest(s.labels || excluded.labels) ORDER BY 1),"
            b" calls = s.calls + excluded.calls"
            b" RETURNING labels, calls",
            (session_id, sorted(set(labels)), calls),
        )
        return _state(session_id, row)


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
    return SessionState(session_id, frozenset(row[0]), int(row[1]))


def _newer(found: int) -> str:
    return (
        f"the database's warded schema is at version {found}, newer than this warded's "
        f"({SCHEMA_VERSION}): upgrade warded on this node"
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
