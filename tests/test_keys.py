"""G20: digests of argument values are keyed (issue 8, item 9).

The audit log keeps a redacted copy of each call's arguments beside a digest
of the full arguments. Unkeyed, the digest of a 4-digit PIN gives the PIN back
to anyone who tries all 10,000; keyed with the deployment key (HMAC-SHA-256,
kept outside the database), it gives nothing without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from support import TEST_KEY
from tiny import tiny
from warded import Gate, MemoryStore, Principal, Session, SQLiteStore, WardedError
from warded.canonical import args_digest, canonical_json, digest
from warded.cli import cli
from warded.keys import ENV_KEY, ENV_KEY_FILE, deployment_key, read_key_file

BOT = Principal.agent("bot")
PIN = "4821"
BUNDLE = tiny({"unlock": "{ pin: String }"}, '@id("u")\npermit (principal, action, resource);\n')


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)


def unlock_gate(store: Any, **kw: Any) -> Gate:
    gate = Gate(BUNDLE, store=store, **kw)
    schema = {"type": "object", "properties": {"pin": {"type": "string"}}, "required": ["pin"]}
    gate.register("unlock", schema, lambda pin: "open", sensitive=["pin"])
    return gate


def stored_digest(gate: Gate) -> str:
    (decision,) = [r.body for r in gate.store.records() if r.body["kind"] == "decision"]
    assert decision["args"] == {"pin": "[redacted]"}  # the copy hides it; the digest must too
    value: str = decision["args_digest"]
    return value


def pins() -> list[str]:
    return [f"{n:04d}" for n in range(10_000)]


def frozen(pin: str) -> bytes:
    return canonical_json({"pin": pin})


# -- brute force ---------------------------------------------------------------------


@pytest.mark.requirement("G20")
def test_trying_every_4_digit_pin_against_the_stored_digest_finds_nothing_without_the_key(
    tmp_path: Path,
) -> None:
    db = tmp_path / "audit.db"
    gate = unlock_gate(SQLiteStore(db))
    assert gate.call(BOT, "unlock", {"pin": PIN}, Session("s")) == "open"
    target = stored_digest(gate)

    # what someone holding only the database can compute: unkeyed digests in every
    # domain warded ever used, and HMACs under keys that are not this deployment's
    unkeyed = [
        lambda data: hashlib.sha256(data).hexdigest(),
        lambda data: digest("warded.args.v1", data),
        lambda data: digest("warded.args.v2", data),
        lambda data: args_digest(data, b"\x00" * 32),
        lambda data: args_digest(data, TEST_KEY),
        lambda data: hmac.new(b"", data, hashlib.sha256).hexdigest(),
    ]
    found = [p for p in pins() for guess in unkeyed if guess(frozen(p)) == target]
    assert found == []

    # the same search with the key (which lives beside the database, not in it) finds it
    key = read_key_file(Path(f"{db}.key"))
    assert [p for p in pins() if args_digest(frozen(p), key) == target] == [PIN]
    assert key.hex().encode() not in db.read_bytes() + Path(f"{db}-wal").read_bytes()


# -- the key file ---------------------------------------------------------------------------


@pytest.mark.requirement("G20")
def test_the_key_file_is_created_beside_the_database_with_mode_0600_and_shared_by_its_gates(
    tmp_path: Path,
) -> None:
    db = tmp_path / "audit.db"
    first, second = unlock_gate(SQLiteStore(db)), unlock_gate(SQLiteStore(db))
    elsewhere = unlock_gate(SQLiteStore(tmp_path / "other.db"))
    for gate in (first, second, elsewhere):
        gate.call(BOT, "unlock", {"pin": PIN}, Session("s"))

    key_file = Path(f"{db}.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(read_key_file(key_file)) == 32
    digests = [r.body["args_digest"] for r in first.store.records() if r.body["kind"] == "decision"]
    assert digests[0] == digests[1]  # two gates on one file: one key
    assert digests[0] != stored_digest(elsewhere)  # another database: another key
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".key")) == [
        "audit.db.key",
        "other.db.key",
    ]


RACER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from warded.keys import deployment_key
    print("ready", flush=True)
    for line in sys.stdin:  # "go PATH": create (or read) the key file there, at once
        print(deployment_key(None, Path(line[3:].rstrip("\\n"))).hex(), flush=True)
    """
)


@pytest.mark.requirement("G20")
def test_processes_racing_to_create_the_key_file_all_end_with_one_key(tmp_path: Path) -> None:
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for p in racers:  # every racer has imported everything and waits
            assert p.stdout is not None
            assert p.stdout.readline() == "ready\n"
        for round_ in range(5):
            key_file = tmp_path / f"audit-{round_}.db.key"
            for p in racers:
                assert p.stdin is not None
                p.stdin.write(f"go {key_file}\n")
                p.stdin.flush()
            keys = {p.stdout.readline().strip() for p in racers if p.stdout is not None}
            assert keys == {read_key_file(key_file).hex()}, round_
    finally:
        for p in racers:
            p.communicate(timeout=60)
    assert all(p.returncode == 0 for p in racers)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"audit-{r}.db.key" for r in range(5)
    ]  # and no temporary files left


@pytest.mark.requirement("G20")
def test_a_racer_that_found_no_key_file_and_lost_the_race_uses_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "audit.db.key"
    winner = read_key_file(key_file, create=True)
    # the loser looked before the winner's file existed
    monkeypatch.setattr(Path, "exists", lambda self: False)

    assert read_key_file(key_file, create=True) == winner

    monkeypatch.undo()
    assert read_key_file(key_file) == winner
    assert [p.name for p in tmp_path.iterdir()] == ["audit.db.key"]


# -- where else the key may come from -------------------------------------------------------


@pytest.mark.requirement("G20")
def test_warded_key_in_the_environment_keys_the_digests_and_no_key_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_KEY, TEST_KEY.hex())
    gate = unlock_gate(SQLiteStore(tmp_path / "audit.db"))
    gate.call(BOT, "unlock", {"pin": PIN}, Session("s"))

    assert stored_digest(gate) == args_digest(frozen(PIN), TEST_KEY)
    assert not (tmp_path / "audit.db.key").exists()


@pytest.mark.requirement("G20")
def test_warded_key_file_names_the_key_and_no_key_file_is_made_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "keys" / "deployment.key"
    elsewhere.parent.mkdir()
    elsewhere.write_text(TEST_KEY.hex() + "\n")
    monkeypatch.setenv(ENV_KEY_FILE, str(elsewhere))
    gate = unlock_gate(SQLiteStore(tmp_path / "audit.db"))
    gate.call(BOT, "unlock", {"pin": PIN}, Session("s"))

    assert stored_digest(gate) == args_digest(frozen(PIN), TEST_KEY)
    assert not (tmp_path / "audit.db.key").exists()


@pytest.mark.requirement("G20")
def test_the_key_given_to_the_gate_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_KEY, "ab" * 32)
    gate = unlock_gate(MemoryStore(), key=TEST_KEY)
    gate.call(BOT, "unlock", {"pin": PIN}, Session("s"))
    assert stored_digest(gate) == args_digest(frozen(PIN), TEST_KEY)


SHORT = "0123456789abcdef0123456789abcd"  # 15 bytes


@pytest.mark.requirement("G20")
@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("given", bytes.fromhex(SHORT)),
        ("given", b""),
        ("env", SHORT),
        ("env", "not hex at all, not hex at all, not hex at all"),
        ("file", SHORT),
        ("file", "zz" * 32),
        ("missing file", ""),
    ],
)
def test_a_key_too_short_unreadable_or_missing_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, value: Any
) -> None:
    kw: dict[str, Any] = {}
    if where == "given":
        kw["key"] = value
    elif where == "env":
        monkeypatch.setenv(ENV_KEY, value)
    else:
        path = tmp_path / "deployment.key"
        if where == "file":
            path.write_text(value)
        monkeypatch.setenv(ENV_KEY_FILE, str(path))

    with pytest.raises(WardedError) as refused:
        unlock_gate(SQLiteStore(tmp_path / "audit.db"), **kw)

    if value:
        assert str(value) not in str(refused.value)
    assert not (tmp_path / "audit.db.key").exists()


def test_sixteen_bytes_are_enough() -> None:
    assert deployment_key(bytes(16), None) == bytes(16)


# -- what does not need the key ---------------------------------------------------------


@pytest.mark.requirement("G20")
@pytest.mark.requirement("G12")
def test_audit_verify_needs_no_key_and_the_key_never_reaches_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "audit.db"
    store = SQLiteStore(db)
    gate = unlock_gate(store)
    gate.call(BOT, "unlock", {"pin": PIN}, Session("s"))
    gate.call(BOT, "unlock", {"pin": 1e20}, Session("s"))  # invalid: refused and recorded
    key = read_key_file(Path(f"{db}.key"))
    store.close()
    os.rename(f"{db}.key", tmp_path / "moved-away.key")

    runner = CliRunner()
    verified = runner.invoke(cli, ["audit", "verify", str(db)])
    tail = runner.invoke(cli, ["audit", "tail", str(db)])

    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith("ok: 3 records")
    assert tail.exit_code == 0
    assert not Path(f"{db}.key").exists()  # reading the log never makes a key
    assert key.hex() not in caplog.text + verified.output + tail.output
