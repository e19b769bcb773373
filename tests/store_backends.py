"""The stores every store-level test runs on: memory, SQLite and PostgreSQL.

PostgreSQL comes from the URL in WARDED_TEST_POSTGRES_URL (`.ci/run` sets it);
each test gets a schema of its own, migrated, and dropped afterwards, so runs
cannot interfere. When the variable is set and the server is unreachable,
the tests fail; when it is not set, the PostgreSQL cases are skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from warded import MemoryStore, SQLiteStore, Store
from warded.audit.record import GENESIS

PG_ENV = "WARDED_TEST_POSTGRES_URL"
BACKENDS = ("memory", "sqlite", "postgres")
KEY = "5e" * 32  # the deployment key every gate on the test database shares (WARDED_KEY)


def pg_base_url() -> str:
    """The test server's URL; skips the test when none is configured."""
    url = os.environ.get(PG_ENV, "")
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    return url


def in_schema(base: str, schema: str) -> str:
    """The URL with every connection's search_path set to `schema`."""
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema(migrated: bool = True) -> Iterator[str]:
    """A URL for a new, empty schema of its own (migrated unless told not to)."""
    import psycopg

    from warded.stores.postgres import migrate

    base = pg_base_url()
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f"CREATE SCHEMA {name}".encode())
    try:
        url = in_schema(base, name)
        if migrated:
            migrate(url)
        yield url
    finally:
        with psycopg.connect(base, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE".encode())


@contextmanager
def open_backend(kind: str, directory: Path) -> Iterator[Store]:
    """A new, empty store of the given kind."""
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "sqlite":
        sqlite = SQLiteStore(directory / "store.db")
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    from warded.stores.postgres import PostgresStore

    with pg_schema() as url:
        postgres = PostgresStore(url)
        try:
            yield postgres
        finally:
            postgres.close()


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """A new, empty store: memory, SQLite, PostgreSQL (with the deployment key set)."""
    if request.param == "postgres":
        monkeypatch.setenv("WARDED_KEY", KEY)
    with open_backend(request.param, tmp_path) as s:
        yield s


class Fresh:
    """Empty stores of one kind, one after another (one per hypothesis example).

    PostgreSQL's is one store in one schema whose tables are emptied for each:
    a new schema per example would cost more than the example.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._open = ExitStack()
        self._postgres: Store | None = None
        self._url = ""

    def __enter__(self) -> Fresh:
        if self.kind == "postgres":
            from warded.stores.postgres import PostgresStore

            # `with` does not call __exit__ when __enter__ raises (a skip, an unreachable
            # server): undo here, or WARDED_KEY stays set until the patch is collected, and
            # worker processes started meanwhile get a key the parent later loses
            with ExitStack() as opening:
                opening.enter_context(pytest.MonkeyPatch.context()).setenv("WARDED_KEY", KEY)
                self._url = opening.enter_context(pg_schema())
                self._postgres = PostgresStore(self._url)
                opening.callback(self._postgres.close)
                self._open = opening.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._open.close()

    def new(self) -> Store:
        if self.kind == "memory":
            return MemoryStore()
        if self.kind == "sqlite":
            return SQLiteStore(Path(tempfile.mkdtemp(prefix="warded-fresh-")) / "store.db")
        import psycopg

        assert self._postgres is not None
        with psycopg.connect(self._url, autocommit=True) as conn:
            conn.execute(EMPTY.encode())
        return self._postgres

    def done(self, store: Store) -> None:
        if isinstance(store, SQLiteStore):
            store.close()
            shutil.rmtree(Path(store.path).parent, ignore_errors=True)


EMPTY = (
    "TRUNCATE warded_audit, warded_counters, warded_approvals, warded_claims, warded_sessions,"
    " warded_session_sources,"
    f" warded_bundles; UPDATE warded_head SET seq = -1, hash = '{GENESIS}', live = NULL"
)
