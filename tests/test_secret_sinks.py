"""G20: a call's secrets reach no sink in clear (issue 8, item 10).

A call's secrets are the values of its `sensitive` parameters and what the
input scanners find in its arguments. One masking step covers every string
of the call that leaves the gate: the argument copy, engine errors, internal
error reasons, tool error messages, the requested tool name, the approver's
copy. The test plants secrets in all of them, then searches every sink: the
SQLite file (audit chain and approvals table), the CLI's output, log lines and
the answers the agent gets.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from support import TEST_KEY
from tiny import tiny
from warded import (
    ApprovalError,
    Approver,
    Gate,
    MemoryStore,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    ToolFailure,
)
from warded.cli import cli
from warded.request import MAX_NAME
from warded.scanners import Finding
from warded.scanners.base import builtin_scanner
from warded.store import Tx

BOT = Principal.agent("bot")
ALICE = Approver("alice", frozenset({"finance"}))

PASSWORD = 'hunter2-Pä"ss'  # a quote and a non-ASCII letter: every JSON spelling counts
PIN = "zq-4821"
MEMO_SECRET = "SECRET-MEMO"  # found by the input scanner, not declared sensitive
NOTE_SECRET = "SECRET-NOTE"
TOOL_SECRET = "SECRET-TOOLNAME"
ENGINE_SECRET = "SECRET-ENGINE"
ENGINE_PIN = "zq-engine-pin"
SECRETS = [PASSWORD, PIN, MEMO_SECRET, NOTE_SECRET, TOOL_SECRET, ENGINE_SECRET, ENGINE_PIN]

POLICIES = """
@id("open")
permit (principal, action in [Action::"login", Action::"probe", Action::"probe_pin"], resource);

@id("transfer")
@approval("finance")
permit (principal, action == Action::"transfer", resource);
"""
BUNDLE = tiny(
    {
        "login": "{ user: String, password: String, note?: String }",
        "transfer": "{ amount: Long, memo: String, pin: String }",
        "probe": "{ n: Long }",
        "probe_pin": "{ pin: Long }",
    },
    POLICIES,
    scan=True,
)


class Marker:
    """The input scanner: flags SECRET-<letters> as a secret."""

    name = "secrets"

    def scan(self, text: str) -> list[Finding]:
        return [
            Finding("secrets", "marker", "", m.start(), m.end(), 1.0)
            for m in re.finditer(r"SECRET-[A-Z]+", text)
        ]


class FlakyStore:
    """A SQLite store whose outcome transactions fail while `fail_outcomes` is set."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.fail_outcomes = False

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[Tx]:
        with self.inner.transaction(durable=durable) as tx:
            yield tx
            if self.fail_outcomes and not durable:
                raise OSError("disk went away")

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._transaction(durable)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def spellings(secret: str) -> list[bytes]:
    """Every way a secret could be written into a file or a terminal."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return [f.encode() for f in forms]


def leaks(data: bytes | str) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return [s for s in SECRETS if any(form in raw for form in spellings(s))]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    db = tmp_path / "audit.db"
    store = FlakyStore(SQLiteStore(db))
    gate = Gate(BUNDLE, store=store, key=TEST_KEY, scanners=[Marker()])  # type: ignore[arg-type]
    ran: list[str] = []

    def login(user: str, password: str, note: str = "") -> str:
        raise RuntimeError(f"login failed for {user}: password {password!r} rejected ({note})")

    def no_account(a: Any) -> tuple[str, str]:
        if a["user"] == "crash":
            raise LookupError(f"no account holds {a['password']}")
        return ("Tool", "login")

    def transfer(amount: int, memo: str, pin: str) -> str:
        ran.append(memo)
        return "sent"

    gate.register(
        "login",
        {"type": "object", "properties": {"user": {}, "password": {}, "note": {}}},
        login,
        sensitive=["password"],
        resource=no_account,
    )
    gate.register(
        "transfer",
        {"type": "object", "properties": {"amount": {"type": "integer"}}},
        transfer,
        sensitive=["pin"],
    )
    # each tool's JSON Schema says string where Cedar's schema says Long: Cedar's
    # error quotes the context it was given
    gate.register("probe", {"type": "object", "properties": {"n": {"type": "string"}}}, str)
    gate.register(
        "probe_pin",
        {"type": "object", "properties": {"pin": {"type": "string"}}},
        str,
        sensitive=["pin"],
    )
    yield {"gate": gate, "store": store, "db": db, "ran": ran}
    store.inner.close()


def files(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


@pytest.mark.requirement("G20")
@pytest.mark.requirement("G16")
def test_secrets_planted_everywhere_reach_no_sink_in_clear(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gate: Gate = world["gate"]
    s = Session("s")
    login = {"user": "ann", "password": PASSWORD, "note": f"token {NOTE_SECRET}"}
    pay = {"amount": 1200, "memo": f"key {MEMO_SECRET}", "pin": PIN}

    answers: list[Any] = [
        gate.call(BOT, "login", login, s),  # the tool's error message quotes its arguments
        gate.call(BOT, "login", {**login, "user": "crash"}, s),  # internal error before deciding
        gate.call(BOT, TOOL_SECRET, {"x": 1}, s),  # an unknown tool's name
        gate.call(BOT, f"tool {TOOL_SECRET}", {}, s),
        gate.call(BOT, "probe", {"n": f"x {ENGINE_SECRET}"}, s),  # Cedar's error quotes it
        gate.call(BOT, "probe_pin", {"pin": ENGINE_PIN}, s),
        gate.call(BOT, "transfer", pay, s),  # held for approval
    ]
    world["store"].fail_outcomes = True
    answers.append(gate.call(BOT, "login", login, s))  # the outcome cannot be recorded: logged
    world["store"].fail_outcomes = False

    held = answers[6]
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    approval = gate.approvals.get(held.approval_id)
    runner = CliRunner()
    db = str(world["db"])
    shown = [
        runner.invoke(cli, ["approvals", "list", db]),
        runner.invoke(cli, ["approvals", "list", db, "--format", "json"]),
        runner.invoke(cli, ["approvals", "show", db, held.approval_id]),
        runner.invoke(cli, ["audit", "tail", db, "-n", "100"]),
        runner.invoke(cli, ["audit", "tail", db, "-n", "100", "--format", "json"]),
        runner.invoke(cli, ["audit", "export", db]),
    ]

    # every path was taken and masked something, so the search below means something
    records = [r.body for r in gate.store.records()]
    assert [type(a).__name__ for a in answers] == [
        "ToolFailure",
        "Refusal",
        "Refusal",
        "Refusal",
        "Refusal",
        "Refusal",
        "Refusal",
        "ToolFailure",
    ]
    assert [a.code for a in answers if isinstance(a, Refusal)] == [
        "unavailable",
        "unknown_tool",
        "unknown_tool",
        "not_permitted",
        "not_permitted",
        "approval_required",
    ]
    error = next(b for b in records if b["kind"] == "outcome")["detail"]["message"]
    assert error == "login failed for ann: password '[redacted]' rejected (token [redacted])"
    assert any(
        "internal error before decision: LookupError" in r for b in records for r in b["reasons"]
    )
    assert [b["tool"] for b in records if b["code"] == "unknown_tool"] == [
        "[redacted:marker]",
        "tool [redacted:marker]",
    ]
    engine = [b for b in records if b["tool"] in {"probe", "probe_pin"}]
    assert all(b["reasons"] and "[redacted" in " ".join(b["reasons"]) for b in engine)
    assert json.loads(approval.args) == {
        "amount": 1200,
        "memo": "key [redacted:marker]",
        "pin": "[redacted]",
    }
    assert approval.call_args is None
    assert all(r.exit_code == 0 for r in shown), [r.output for r in shown]
    assert "[redacted]" in shown[2].output
    assert any("not recorded" in m for m in caplog.messages)

    # and no secret anywhere
    assert leaks(files(world["db"])) == []
    for out in shown:
        assert leaks(out.output) == []
    assert leaks(caplog.text) == []
    for answer in answers:
        assert leaks(answer.to_model()) == []
    assert leaks(json.dumps(approval.to_json())) == []


@pytest.mark.requirement("G20")
@pytest.mark.requirement("G8")
def test_an_approval_whose_arguments_were_masked_runs_only_on_the_agents_own_retry(
    world: dict[str, Any],
) -> None:
    gate: Gate = world["gate"]
    s = Session("s")
    pay = {"amount": 1200, "memo": "rent", "pin": PIN}
    held = gate.call(BOT, "transfer", pay, s)
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    gate.approvals.approve(held.approval_id, ALICE)

    with pytest.raises(ApprovalError) as refused:
        gate.run_approved(held.approval_id, s)

    assert refused.value.problem == "not_runnable"
    assert world["ran"] == []
    assert gate.approvals.get(held.approval_id).status == "approved"  # still usable
    assert gate.call(BOT, "transfer", pay, s) == "sent"  # the agent supplies the pin
    assert world["ran"] == ["rent"]
    again = gate.call(BOT, "transfer", pay, s)
    assert isinstance(again, Refusal)
    assert again.code == "approval_required"
    assert world["ran"] == ["rent"]


def test_an_approval_with_nothing_masked_keeps_its_exact_arguments_for_run_approved(
    world: dict[str, Any],
) -> None:
    # the same bundle and store, with a transfer tool that marks nothing sensitive
    plain = Gate(BUNDLE, store=world["store"], key=TEST_KEY, scanners=[Marker()])
    plain.register(
        "transfer",
        {"type": "object", "properties": {"amount": {"type": "integer"}}},
        lambda amount, memo, pin: f"sent {amount} {memo} {pin}",
    )
    s = Session("s")
    pay = {"amount": 1200, "memo": "rent", "pin": "1"}
    held = plain.call(BOT, "transfer", pay, s)
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    approval = plain.approvals.get(held.approval_id)
    assert approval.call_args is not None
    assert json.loads(approval.call_args) == json.loads(approval.args) == pay
    plain.approvals.approve(held.approval_id, ALICE)

    assert plain.run_approved(held.approval_id, s) == "sent 1200 rent 1"


@pytest.mark.requirement("G20")
@pytest.mark.parametrize(
    "secret", ["line1\nPäss", "tab\there", "quote'and\"both", "back\\slash", "é" * 3]
)
def test_a_secret_quoted_by_repr_in_a_tool_error_is_masked_in_every_spelling(
    world: dict[str, Any], secret: str
) -> None:
    gate: Gate = world["gate"]
    answer = gate.call(BOT, "login", {"user": "ann", "password": secret}, Session("s"))

    assert isinstance(answer, ToolFailure)
    message = next(r.body for r in gate.store.records() if r.body["kind"] == "outcome")["detail"][
        "message"
    ]
    assert "[redacted]" in message
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    raw = files(world["db"])
    assert [f for f in forms if f in message or f.encode() in raw] == []


@pytest.mark.requirement("G20")
@pytest.mark.parametrize("kept", [4, 8, len(PASSWORD) - 1])
def test_a_secret_cut_by_the_error_messages_length_limit_leaves_no_part_of_it(
    world: dict[str, Any], kept: int
) -> None:
    # The agent controls `user`, so it can place the password across the limit at
    # any point: a cut before masking would keep the first `kept` characters in clear.
    before = len("login failed for ") + len(": password '")
    user = "u" * (500 - before - kept)
    gate: Gate = world["gate"]
    answer = gate.call(BOT, "login", {"user": user, "password": PASSWORD}, Session("s"))

    assert isinstance(answer, ToolFailure)
    outcome = next(r.body for r in gate.store.records() if r.body["kind"] == "outcome")
    message = outcome["detail"]["message"]
    assert len(message) <= 500
    assert PASSWORD[:kept] not in message
    assert PASSWORD[:kept].encode() not in files(world["db"])


@pytest.mark.requirement("G20")
def test_a_secret_cut_by_the_tool_name_length_limit_leaves_no_part_of_it() -> None:
    # The log keeps 128 characters of a requested name; cut before it is scanned, the
    # key's first characters no longer look like a key and stayed in clear.
    key = "AKIAIOSFODNN7EXAMPLE"
    gate = Gate(BUNDLE, store=MemoryStore(), key=TEST_KEY, scanners=[builtin_scanner("secrets")])
    name = "t" * (MAX_NAME - 14) + key

    answer = gate.call(BOT, name, {}, Session("s"))

    assert isinstance(answer, Refusal)
    assert answer.code == "unknown_tool"
    (record,) = [r.body for r in gate.store.records()]
    assert len(record["tool"]) <= MAX_NAME
    assert key[:12] not in record["tool"]


@pytest.mark.requirement("G20")
def test_a_secret_quoted_by_the_shadow_engines_error_is_masked(world: dict[str, Any]) -> None:
    gate: Gate = world["gate"]
    gate.shadow(BUNDLE)  # the same policies in shadow: its Cedar error quotes the pin too

    answer = gate.call(BOT, "probe_pin", {"pin": ENGINE_PIN}, Session("s"))

    assert isinstance(answer, Refusal)
    shadow = [r.body for r in gate.store.records() if r.body["mode"] == "shadow"]
    assert len(shadow) == 1
    assert shadow[0]["reasons"]
    assert "[redacted]" in " ".join(shadow[0]["reasons"])
    assert leaks(files(world["db"])) == []


@pytest.mark.requirement("G20")
@pytest.mark.parametrize(
    ("pin", "quoted"),  # the pin, and as Cedar's messages quote it (Rust's escape_debug)
    [
        ("zq'4821", "zq\\'4821"),
        ("zq\u200b4821", "zq\\u{200b}4821"),
        ("zq\x7f4821", "zq\\u{7f}4821"),
        ("zq\x004821", "zq\\04821"),
        ("\u0301zq4821", "\\u{301}zq4821"),
    ],
)
def test_a_secret_as_cedars_error_quotes_it_is_masked(
    world: dict[str, Any], pin: str, quoted: str
) -> None:
    gate: Gate = world["gate"]

    answer = gate.call(BOT, "probe_pin", {"pin": pin}, Session("s"))

    assert isinstance(answer, Refusal)
    (record,) = [r.body for r in gate.store.records() if r.body["tool"] == "probe_pin"]
    reasons = " ".join(record["reasons"])
    assert "failed to build request" in reasons  # Cedar's error, quoting the context
    assert "[redacted]" in reasons
    assert quoted not in reasons
    assert quoted.encode() not in files(world["db"])


class Quoting:
    """An input scanner that fails, quoting what it was given."""

    name = "secrets"

    def scan(self, text: str) -> list[Finding]:
        raise ValueError(f"cannot scan {text!r}")


@pytest.mark.requirement("G20")
@pytest.mark.requirement("G1")
def test_a_failing_scanners_message_quoting_a_sensitive_argument_is_masked() -> None:
    gate = Gate(BUNDLE, store=MemoryStore(), key=TEST_KEY, scanners=[Quoting()])
    ran: list[str] = []
    gate.register(
        "login",
        {"type": "object", "properties": {"user": {}, "password": {}}},
        lambda user, password: ran.append(user),
        sensitive=["password"],
    )

    answer = gate.call(BOT, "login", {"user": "ann", "password": PASSWORD}, Session("s"))

    assert isinstance(answer, Refusal)
    assert answer.code == "unavailable"
    assert ran == []
    (record,) = list(gate.store.records())
    assert "internal error before decision: ValueError" in record.body["reasons"][0]
    assert leaks(record.raw) == []


class HeldStore(MemoryStore):
    """A memory store whose transactions wait until `opened` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = threading.Event()
        self.changed = threading.Condition()

    @contextmanager
    def _held(self, durable: bool) -> Iterator[Tx]:
        assert self.opened.wait(30), "the test never opened the store"
        with MemoryStore.transaction(self, durable=durable) as tx:
            yield tx
        with self.changed:
            self.changed.notify_all()

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._held(durable)


@pytest.mark.requirement("G20")
def test_a_timed_out_calls_record_masks_what_the_scanners_find_in_its_tool_name() -> None:
    store = HeldStore()
    gate = Gate(BUNDLE, store=store, key=TEST_KEY, scanners=[Marker()], decision_timeout=0.2)

    answer = gate.call(BOT, f"tool {TOOL_SECRET}", {}, Session("s"))

    assert isinstance(answer, Refusal)
    assert answer.code == "unavailable"  # the refusal could not be recorded in time
    store.opened.set()
    with store.changed:  # the late refusal, and the record of the time-out
        assert store.changed.wait_for(lambda: len(list(store.records())) == 2, 30)
    assert {r.body["code"] for r in store.records()} == {"unknown_tool", "unavailable"}
    assert leaks(b"".join(r.raw for r in store.records())) == []
