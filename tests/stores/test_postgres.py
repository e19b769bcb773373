"""What only the PostgreSQL store has: versioned migrations, tamper evidence in its
tables, synchronous commits whatever the server's default, and a connection
that can be lost and found again.

The store-port tests every backend passes are in test_store.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from store_backends import in_schema, pg_base_url, pg_schema
from tcp_proxy import Proxy
from warded import AuditEntry, Gate, PolicyBundle, StoreError, WardedError, verify
from warded.audit.record import AUDIT_DOMAIN
from warded.canonical import canonical_json, digest
from warded.cli import cli
from warded.stores import open_store
from warded.stores.postgres import SCHEMA_VERSION, PostgresStore, _PostgresTx, migrate

N = 8
BANKING = Path(__file__).resolve().parents[2] / "examples" / "banking" / "policies"


def entry(i: int) -> AuditEntry:
    return AuditEntry(kind="event", call=f"c{i}", time=1_767_225_600.0 + i, detail={"i": i})


@pytest.fixture
def url() -> Iterator[str]:
    with pg_schema() as u:
        yield u


@pytest.fixture
def chain(url: str) -> Iterator[str]:
    """A migrated schema whose chain holds N records."""
    store = PostgresStore(url)
    try:
        store.append([entry(0)])
        store.append([entry(i) for i in range(1, N)])
    finally:
        store.close()
    return url  # type: ignore[return-value]


def sql(url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement.encode(), params)
        return cursor.fetchall() if cursor.description else []


def verify_url(url: str, checkpoint: Any = None) -> Any:
    store = PostgresStore(url)
    try:
        return verify(store.records(), checkpoint)
    finally:
        store.close()


def checkpoint_of(url: str) -> Any:
    store = PostgresStore(url)
    try:
        return store.checkpoint()
    finally:
        store.close()


# -- migrations ---------------------------------------------------------------------------


def test_migrate_creates_the_schema_once_and_is_idempotent() -> None:
    with pg_schema(migrated=False) as url:
        assert migrate(url) == (0, SCHEMA_VERSION)
        assert migrate(url) == (SCHEMA_VERSION, SCHEMA_VERSION)
        PostgresStore(url).close()


def test_a_store_refuses_a_database_that_was_never_migrated() -> None:
    with pg_schema(migrated=False) as url, pytest.raises(StoreError, match="warded db migrate"):
        PostgresStore(url)


def test_a_database_newer_than_the_code_is_refused_by_migrate_and_by_the_store(url: str) -> None:
    sql(url, "UPDATE warded_schema SET version = %s", SCHEMA_VERSION + 1)

    with pytest.raises(StoreError, match="newer"):
        migrate(url)
    with pytest.raises(StoreError, match="newer"):
        PostgresStore(url)
    assert sql(url, "SELECT version FROM warded_schema") == [(SCHEMA_VERSION + 1,)]


def test_warded_db_migrate_reports_what_it_did_and_refuses_what_it_cannot() -> None:
    runner = CliRunner()
    with pg_schema(migrated=False) as url:
        first = runner.invoke(cli, ["db", "migrate", url])
        again = runner.invoke(cli, ["db", "migrate", url])
        sql(url, "UPDATE warded_schema SET version = 99")
        newer = runner.invoke(cli, ["db", "migrate", url])
    not_a_url = runner.invoke(cli, ["db", "migrate", "audit.db"])

    assert (first.exit_code, first.output) == (
        0,
        f"ok: schema migrated from version 0 to {SCHEMA_VERSION}\n",
    )
    assert (again.exit_code, again.output) == (
        0,
        f"ok: schema already at version {SCHEMA_VERSION}\n",
    )
    assert newer.exit_code == 1
    assert "newer than this warded's" in newer.output
    assert not_a_url.exit_code == 1
    assert "needs a PostgreSQL URL" in not_a_url.output


def test_an_unreachable_server_is_a_store_error_not_a_hang() -> None:
    proxy, through = Proxy.before(pg_base_url())
    proxy.down()
    try:
        with pytest.raises(StoreError, match="cannot open the database"):
            PostgresStore(through)
    finally:
        proxy.close()


def test_open_store_takes_a_url_or_a_path(url: str, tmp_path: Any) -> None:
    postgres = open_store(url)
    sqlite = open_store(tmp_path / "x.db")
    try:
        assert type(postgres).__name__ == "PostgresStore"
        assert type(sqlite).__name__ == "SQLiteStore"
    finally:
        postgres.close()
        sqlite.close()


# -- G11: durable commits ------------------------------------------------------------------


@pytest.mark.requirement("G11")
def test_decisions_commit_synchronously_even_when_the_connection_default_is_off(
    url: str,
) -> None:
    lax = url + "%20-csynchronous_commit%3Doff"  # appended to the options= of the test URL
    assert sql(lax, "SHOW synchronous_commit") == [("off",)]
    store = PostgresStore(lax)
    try:
        with store.transaction() as tx:
            assert isinstance(tx, _PostgresTx)
            shown = tx.conn.execute(b"SHOW synchronous_commit").fetchone()
            tx.append([entry(0)])
    finally:
        store.close()
    assert shown == ("on",)


# -- G12: tampering with the tables ---------------------------------------------------------


def assert_fails_at(url: str, index: int, checkpoint: Any = None) -> None:
    result = verify_url(url, checkpoint)
    assert (result.ok, result.first_bad) == (False, index), result


@pytest.mark.requirement("G12")
@pytest.mark.requirement("G14")
@pytest.mark.parametrize("index", [0, 3, N - 1])
def test_an_edited_row_is_caught_at_its_record(chain: str, index: int) -> None:
    cp = checkpoint_of(chain)
    (body,) = sql(chain, "SELECT body FROM warded_audit WHERE seq = %s", index)[0]
    changed = canonical_json({**json.loads(bytes(body)), "detail": {"i": -1}})
    sql(chain, "UPDATE warded_audit SET body = %s WHERE seq = %s", changed, index)

    assert_fails_at(chain, index)
    assert_fails_at(chain, index, cp)


@pytest.mark.requirement("G12")
@pytest.mark.requirement("G14")
@pytest.mark.parametrize("index", [0, 3, N - 2])
def test_a_row_resealed_with_its_hash_breaks_the_next_link(chain: str, index: int) -> None:
    (body,) = sql(chain, "SELECT body FROM warded_audit WHERE seq = %s", index)[0]
    forged = canonical_json({**json.loads(bytes(body)), "detail": {"forged": True}})
    sql(
        chain,
        "UPDATE warded_audit SET hash = %s, body = %s WHERE seq = %s",
        digest(AUDIT_DOMAIN, forged),
        forged,
        index,
    )

    assert_fails_at(chain, index + 1)


@pytest.mark.requirement("G12")
@pytest.mark.requirement("G14")
@pytest.mark.parametrize("index", [0, 3, N - 2])
def test_a_deleted_row_is_caught_where_it_was(chain: str, index: int) -> None:
    sql(chain, "DELETE FROM warded_audit WHERE seq = %s", index)
    assert_fails_at(chain, index)


@pytest.mark.requirement("G12")
@pytest.mark.requirement("G14")
def test_two_swapped_rows_are_caught_at_the_first(chain: str) -> None:
    rows = {
        seq: (h, bytes(b))
        for seq, h, b in sql(chain, "SELECT seq, hash, body FROM warded_audit WHERE seq IN (2, 5)")
    }
    for seq, other in ((2, 5), (5, 2)):
        h, b = rows[other]
        sql(chain, "UPDATE warded_audit SET hash = %s, body = %s WHERE seq = %s", h, b, seq)
    assert_fails_at(chain, 2)


@pytest.mark.requirement("G12")
@pytest.mark.requirement("G14")
def test_a_truncated_tail_is_caught_against_the_checkpoint_and_new_records_leave_a_gap(
    chain: str,
) -> None:
    cp = checkpoint_of(chain)
    sql(chain, "DELETE FROM warded_audit WHERE seq >= 5")
    assert verify_url(chain).ok
    assert_fails_at(chain, 5, cp)

    store = PostgresStore(chain)
    try:
        store.append([entry(100)])  # the head row remembers where the chain was
    finally:
        store.close()
    assert_fails_at(chain, 5)


# -- a lost connection ---------------------------------------------------------------------


@pytest.mark.requirement("G1")
@pytest.mark.requirement("G14")
def test_a_connection_lost_inside_a_transaction_keeps_nothing_and_the_store_recovers(
    url: str,
) -> None:
    proxy, through = Proxy.before(url)
    store = PostgresStore(through)
    try:
        store.append([entry(0)])

        def lose_it() -> None:
            with store.transaction() as tx:
                tx.update_session("s", labels=["x"], calls=1)
                proxy.cut()
                tx.append([entry(1)])

        with pytest.raises(StoreError):
            lose_it()
        proxy.down()
        with pytest.raises(StoreError):
            store.append([entry(1)])
        proxy.up()
        store.append([entry(2)])

        assert [r.body["detail"]["i"] for r in store.records()] == [0, 2]
        assert store.session("s").calls == 0
        assert verify(store.records()).ok
    finally:
        store.close()
        proxy.close()


def test_reads_recover_once_the_database_is_back(url: str) -> None:
    proxy, through = Proxy.before(url)
    store = PostgresStore(through)
    try:
        with store.transaction() as tx:
            tx.update_session("s", calls=1)
        assert store.session("s").calls == 1
        proxy.down()
        with pytest.raises(StoreError):
            store.session("s")
        proxy.up()
        assert store.session("s").calls == 1
    finally:
        store.close()
        proxy.close()


def test_each_test_schema_is_its_own(url: str) -> None:
    """Two schemas of one database never see each other's records."""
    with pg_schema() as other:
        a, b = PostgresStore(url), PostgresStore(other)
        try:
            a.append([entry(0)])
            assert b.checkpoint().size == 0
            assert in_schema("postgresql://x/y", "s").endswith("options=-csearch_path%3Ds")
        finally:
            a.close()
            b.close()


def test_a_gate_on_postgresql_without_the_deployment_key_refuses_to_start(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARDED_KEY", raising=False)
    monkeypatch.delenv("WARDED_KEY_FILE", raising=False)
    store = PostgresStore(url)
    try:
        with pytest.raises(WardedError, match="WARDED_KEY"):
            Gate(PolicyBundle.from_directory(BANKING), store=store)
        assert Gate(PolicyBundle.from_directory(BANKING), store=store, key=bytes(32)).version
    finally:
        store.close()
