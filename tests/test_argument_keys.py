"""G20: a secret put in an argument's *name* (a dictionary key) is found and masked.

Where a tool's JSON Schema admits free keys (`additionalProperties`, a
`dict[str, X]`, an MCP upstream's bare `"type": "object"`), an agent can put a
secret in a key instead of a value. The input scanners read keys too: a key
finding sets `context.scan` like a value finding, the key is masked in every
record (the argument copy, the Cedar request copy, error texts, the approver's
copy), and the tool still receives the exact arguments. A result's keys
follow the rule of its values: masked for the model where the policy says
`@redact`, and never in clear in the outcome record. Every sink is read back
from a real SQLite file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import TEST_KEY
from tiny import tiny
from warded import Gate, Principal, Refusal, Session, SQLiteStore, ToolFailure
from warded.canonical import args_digest, canonical_json
from warded.outputs import MAX_DEPTH
from warded.scanners import Finding

pytestmark = pytest.mark.requirement("G20")

BOT = Principal.agent("bot")
SECRET = re.compile(r"SECRET-[A-Z]+")
MASKED = "[redacted:marker]"

POLICIES = """
@id("open")
permit (principal, action in [Action::"store", Action::"keep", Action::"guarded",
  Action::"fetch_plain", Action::"send"], resource);

@id("no-secrets")
forbid (principal, action == Action::"guarded", resource) when { context.scan.secrets };

@id("ask")
@approval("finance")
permit (principal, action == Action::"ask", resource);

@id("fetch")
@redact("secrets")
permit (principal, action == Action::"fetch", resource);
"""
NAMED = '{ "SECRET-KEY"?: String, plain?: String }'  # Cedar declares the key by name
BUNDLE = tiny(
    {
        "store": "{}",  # free keys: Cedar's request validation refuses every one
        "keep": NAMED,
        "guarded": NAMED,
        "ask": NAMED,
        "fetch": "{}",
        "fetch_plain": "{}",
        "send": '{ headers: { "X-Private-Name"?: String } }',
    },
    POLICIES,
    scan=True,
)
FREE = {
    "type": "object",
    "properties": {"meta": {"type": "object", "additionalProperties": {"type": "string"}}},
}


class Marker:
    """Flags SECRET-<capitals> as a secret (input and output scanner)."""

    name = "secrets"

    def scan(self, text: str) -> list[Finding]:
        return [
            Finding("secrets", "marker", "", m.start(), m.end(), 1.0) for m in SECRET.finditer(text)
        ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    db = tmp_path / "audit.db"
    store = SQLiteStore(db)
    gate = Gate(BUNDLE, store=store, key=TEST_KEY, scanners=[Marker()], output_scanners=[Marker()])
    ran: list[dict[str, Any]] = []

    def keep(**kwargs: Any) -> str:
        ran.append(kwargs)
        if kwargs.get("plain") == "fail":
            raise RuntimeError(f"cannot keep {kwargs!r}")
        return "kept"

    result = {
        "SECRET-OUT": "v",
        "rows": [{"SECRET-ROW": 1}, {"x SECRET-IN y": {"SECRET-UNDER": "SECRET-VALUE"}}],
        MASKED: "a real key",
    }
    gate.register("store", FREE, lambda **_: "stored")
    for name in ("keep", "guarded", "ask"):
        gate.register(name, {"type": "object"}, keep)
    for name in ("fetch", "fetch_plain"):
        gate.register(name, {"type": "object"}, lambda: result)
    yield {"gate": gate, "db": db, "ran": ran}
    store.close()


def files(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


def records(gate: Gate) -> list[dict[str, Any]]:
    return [r.body for r in gate.store.records()]


def clear(data: bytes) -> list[str]:
    return sorted({m.decode() for m in re.findall(rb"SECRET-[A-Z]+", data)})


def test_secret_keys_at_any_depth_are_masked_in_every_record(world: dict[str, Any]) -> None:
    gate: Gate = world["gate"]
    s = Session("s")
    deep: Any = "x"
    for _ in range(MAX_DEPTH + 1):
        deep = {"a": deep}
    calls = [
        {"SECRET-TOP": "v"},
        {"meta": {"SECRET-NESTED": "v", "token SECRET-INSIDE here": "w"}},
        {"rows": [{"SECRET-ROW": 1}, {"ok": {"SECRET-DEEPER": 2}}]},
        {"meta": {"SECRET-AA": "1", "SECRET-BB": "2", f"{MASKED}#2": "3", MASKED: "4"}},
        {"meta": {"a/SECRET-SLASH~1": "x"}},
        {"meta": {"SECRET-BAD": 5}},  # violates the schema under a secret key
        {"SECRET-DEEP": deep},  # nested too deep under a secret key
    ]
    answers = [gate.call(BOT, "store", args, s) for args in calls]

    assert [a.code for a in answers if isinstance(a, Refusal)] == [
        "not_permitted",  # Cedar's request validation: no such attribute
        "not_permitted",
        "not_permitted",
        "not_permitted",
        "not_permitted",
        "invalid_arguments",
        "invalid_arguments",
    ]
    bodies = records(gate)
    assert [b["args"] for b in bodies[:5]] == [
        {MASKED: "v"},
        {"meta": {MASKED: "v", f"token {MASKED} here": "w"}},
        {"rows": [{MASKED: 1}, {"ok": {MASKED: 2}}]},
        # frozen arguments have their keys sorted: the real masks come before
        {"meta": {MASKED: "4", f"{MASKED}#2": "3", f"{MASKED}#3": "1", f"{MASKED}#4": "2"}},
        {"meta": {f"a/{MASKED}~1": "x"}},
    ]
    assert [b["request"]["context"]["args"] for b in bodies[:5]] == [b["args"] for b in bodies[:5]]
    assert all(b["reasons"] for b in bodies[:5])  # Cedar's errors, which quote the context
    # the refusal's detail names where the arguments are wrong: through the secret key
    assert bodies[5]["reasons"] == ["meta/[redacted]: violates 'type'"]
    assert bodies[6]["reasons"][0].startswith("arguments nested deeper than 64 levels at [redacted")
    assert clear(files(world["db"])) == []
    assert clear(json.dumps([a.to_model() for a in answers]).encode()) == []


def test_a_key_finding_alone_sets_context_scan_for_the_policy(world: dict[str, Any]) -> None:
    gate: Gate = world["gate"]
    s = Session("s")
    assert gate.call(BOT, "guarded", {"plain": "x"}, s) == "kept"
    refused = gate.call(BOT, "guarded", {"SECRET-KEY": "x"}, s)

    assert isinstance(refused, Refusal)
    assert refused.code == "not_permitted"
    last = records(gate)[-1]
    assert last["policies"] == ["no-secrets"]
    assert last["request"]["context"]["scan"] == {"secrets": True}
    assert last["args"] == {MASKED: "x"}
    assert world["ran"] == [{"plain": "x"}]


@pytest.mark.requirement("G7")
def test_the_tool_receives_the_exact_arguments_and_the_digest_is_over_them(
    world: dict[str, Any],
) -> None:
    gate: Gate = world["gate"]
    args = {"SECRET-KEY": "value", "plain": "p"}
    assert gate.call(BOT, "keep", args, Session("s")) == "kept"

    assert world["ran"] == [args]
    decision, outcome = records(gate)
    assert decision["args"] == {MASKED: "value", "plain": "p"}
    digest = args_digest(canonical_json(args), TEST_KEY)
    assert decision["args_digest"] == outcome["args_digest"] == digest
    assert clear(files(world["db"])) == []


def test_a_tool_error_quoting_a_secret_key_is_masked(world: dict[str, Any]) -> None:
    gate: Gate = world["gate"]
    answer = gate.call(BOT, "keep", {"SECRET-KEY": "v", "plain": "fail"}, Session("s"))

    assert isinstance(answer, ToolFailure)
    outcome = records(gate)[-1]
    assert outcome["detail"]["message"] == "cannot keep {'[redacted]': 'v', 'plain': 'fail'}"
    assert clear(files(world["db"])) == []


def test_the_approvers_copy_masks_a_secret_key(world: dict[str, Any]) -> None:
    gate: Gate = world["gate"]
    held = gate.call(BOT, "ask", {"SECRET-KEY": "v"}, Session("s"))

    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    approval = gate.approvals.get(held.approval_id)
    assert json.loads(approval.args) == {MASKED: "v"}
    assert approval.call_args is None  # the exact arguments are not kept for run_approved
    assert clear(files(world["db"])) == []


def test_secret_keys_of_a_result_are_masked_for_the_model_where_redact_says(
    world: dict[str, Any],
) -> None:
    gate: Gate = world["gate"]
    out = gate.call(BOT, "fetch", {}, Session("s"))

    assert out == {
        MASKED + "#2": "v",
        "rows": [{MASKED: 1}, {f"x {MASKED} y": {MASKED: MASKED}}],
        MASKED: "a real key",
    }
    found = records(gate)[-1]["detail"]["findings"]
    assert [f["path"] for f in found] == [
        f"{MASKED}#2/~",
        "rows/0/[redacted:marker]/~",
        "rows/1/x [redacted:marker] y/~",
        "rows/1/x [redacted:marker] y/[redacted:marker]/~",
        "rows/1/x [redacted:marker] y/[redacted:marker]",
    ]
    assert clear(files(world["db"])) == []  # the remembered result is the masked one too


def test_a_results_keys_are_never_in_clear_in_the_outcome_record(world: dict[str, Any]) -> None:
    gate: Gate = world["gate"]
    out = gate.call(BOT, "fetch_plain", {}, Session("s"))

    assert out["SECRET-OUT"] == "v"  # no @redact: the model sees keys as it sees values
    outcome = records(gate)[-1]
    assert outcome["detail"]["labels_added"] == ["secrets"]
    assert len(outcome["detail"]["findings"]) == 5
    assert clear(json.dumps(outcome).encode()) == []


class Word:
    """A plug-in that flags a word wherever it stands, as a data-loss scanner might."""

    name = "secrets"

    def __init__(self, word: str) -> None:
        self.word = word

    def scan(self, text: str) -> list[Finding]:
        return [
            Finding("secrets", "word", "", m.start(), m.end(), 1.0)
            for m in re.finditer(re.escape(self.word), text)
        ]


def test_a_flagged_key_naming_a_sensitive_parameter_keeps_its_value_masked(
    tmp_path: Path,
) -> None:
    # masking the key "password" would hide it from the redactor, which masks by name
    store = SQLiteStore(tmp_path / "audit.db")
    gate = Gate(BUNDLE, store=store, scanners=[Word("password")])
    gate.register("store", FREE, lambda **_: "stored", sensitive=["password"])
    gate.call(
        BOT, "store", {"password": "hunter2-xyz", "meta": {"password": "x-hunter3"}}, Session("s")
    )
    [decision] = records(gate)
    store.close()

    assert decision["args"] == {"meta": {"password": "[redacted]"}, "password": "[redacted]"}
    assert decision["request"]["context"]["args"] == decision["args"]
    assert b"hunter" not in files(tmp_path / "audit.db")


def test_keys_inside_a_sensitive_value_are_masked_in_error_texts(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "audit.db")
    gate = Gate(BUNDLE, store=store)

    def send(headers: dict[str, str]) -> str:
        raise RuntimeError(f"refused {headers!r}")

    gate.register("send", {"type": "object"}, send, sensitive=["headers"])
    args = {"headers": {"X-Private-Name": "value-1"}}
    assert isinstance(gate.call(BOT, "send", args, Session("s")), ToolFailure)
    outcome = records(gate)[-1]
    store.close()

    assert outcome["detail"]["message"] == "refused {'[redacted]': '[redacted]'}"
    assert b"X-Private-Name" not in files(tmp_path / "audit.db")


def test_a_tools_own_parameter_names_are_not_scanned_as_keys() -> None:
    # the names the tool's schema declares are its text, not the caller's: a call
    # with fixed parameters costs no more than before keys were scanned
    gate = Gate(BUNDLE, scanners=[Word("plain")])
    gate.register("guarded", {"type": "object", "properties": {"plain": {}}}, lambda **_: "ok")
    assert gate.call(BOT, "guarded", {"plain": "x"}, Session("s")) == "ok"
    refused = gate.call(BOT, "guarded", {"plain": "plain"}, Session("s"))  # values still are
    assert isinstance(refused, Refusal)
    assert records(gate)[-1]["policies"] == ["no-secrets"]
