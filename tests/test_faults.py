"""G1 fail closed: every port that raises, answers garbage or hangs gives a refusal.

The ports are the policy engine, the audit store, the clock, a tool's resource
rule and the policy source (reload). For every fault the tool never runs, a
`Refusal` comes back (never an exception) and, where the audit store still
works, the audit record says why. Real SQLite faults (full disk, read-only
database, locked database) end the same way.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cedarpy
import pytest

from warded import (
    AuditEntry,
    AuditRecord,
    BundleError,
    BundleFiles,
    Decision,
    Gate,
    ManualClock,
    MemoryStore,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    StoreError,
)
from warded.policy.engine import Engine
from warded.store import Tx

ROOT = Path(__file__).resolve().parent.parent
BANKING = ROOT / "examples" / "banking" / "policies"
KNOWN_PAYEE = "GB33BUKB20201555555555"
PAYMENT = {"recipient": KNOWN_PAYEE, "amount": 5.0, "subject": "invoice 7"}
SENT = {"status": "sent"}

HANG_TIMEOUT = 0.3  # the gate's decision_timeout when a port hangs
RETURN_BOUND = 3.0  # a call must come back well within this, whatever the port does
SETTLE_BOUND = 10.0  # bound on background work finishing once a hang is released


# -- shared helpers -----------------------------------------------------------


class WatchedStore(MemoryStore):
    """A memory store a test can wait on, with a bound, for records to appear."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    @contextmanager
    def _watched(self, durable: bool) -> Iterator[Tx]:
        with MemoryStore.transaction(self, durable=durable) as tx:
            yield self.wrap(tx)
        with self._changed:
            self._changed.notify_all()

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._watched(durable)

    def wrap(self, tx: Tx) -> Tx:
        return tx

    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.records()]

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = SETTLE_BOUND
    ) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.bodies()), timeout)


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run `fn` in a helper thread; fail if it has not returned after `seconds`.

    An exception from `fn` is re-raised here, so "never an exception" is checked too.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"did not return within {seconds}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def invoke(
    how: str, gate: Gate, principal: Principal, tool: str, args: Any, session: Session
) -> Any:
    if how == "call":
        return gate.call(principal, tool, args, session)
    return asyncio.run(gate.acall(principal, tool, args, session))


def record(store: WatchedStore, record_id: str) -> dict[str, Any]:
    matches = [b for b in store.bodies() if b["id"] == record_id]
    assert len(matches) == 1, f"no single audit record with id {record_id}"
    return matches[0]


def assert_audited_refusal(store: WatchedStore, result: Refusal) -> None:
    """The refusal's audit record is a deny with the same code and says why; nothing ran."""
    body = record(store, result.ref)
    assert body["kind"] == "decision"
    assert body["decision"] == "deny"
    assert body["code"] == result.code
    assert body["reasons"], "the audit record must say why the call was refused"
    same_call = [b for b in store.bodies() if b["call"] == body["call"]]
    assert same_call == [body], "a refused call has no other record (no allow, no outcome)"


# -- port doubles -------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    port: str  # engine | audit | clock | resource | source
    mode: str  # raise | garbage | hang
    value: Any = None  # the exception to raise or the garbage to answer
    name: str = ""
    codes: tuple[str, ...] = ("unavailable",)

    def __str__(self) -> str:
        return f"{self.port}-{self.mode}" + (f"-{self.name}" if self.name else "")


class Misbehaviour:
    """What a faulty port does each time it is used: raise, answer garbage, or hang.

    A hang waits on `release` (set by the fixture at teardown at the latest),
    then behaves normally. `entered` is set the first time the port is used.
    """

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, healthy: Callable[[], Any]) -> Any:
        self.entered.set()
        if self.fault.mode == "raise":
            raise self.fault.value
        if self.fault.mode == "garbage":
            return self.fault.value
        if not self.release.wait(SETTLE_BOUND * 3):
            raise TimeoutError("the test never released this hang")
        return healthy()


class FaultyEngine:
    """Wraps the live engine; `decide` misbehaves, visibility is left alone."""

    def __init__(self, real: Engine, act: Misbehaviour) -> None:
        self._real = real
        self._act = act
        self.bundle = real.bundle
        self.mode = real.mode

    @property
    def version(self) -> str:
        return self._real.version

    def visible(self, principal: Principal, tool: str) -> bool:
        return self._real.visible(principal, tool)

    def decide(self, *args: Any) -> Any:
        return self._act(lambda: self._real.decide(*args))


class FaultyStore(WatchedStore):
    """A store whose audit appends misbehave; garbage answers store nothing."""

    def __init__(self, act: Misbehaviour) -> None:
        super().__init__()
        self._act = act

    def wrap(self, tx: Tx) -> Tx:
        return _FaultyTx(tx, self._act)


class _FaultyTx:
    def __init__(self, tx: Tx, act: Misbehaviour) -> None:
        self._tx = tx
        self._act = act

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        result: list[AuditRecord] = self._act(lambda: self._tx.append(entries))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


class FaultyClock:
    def __init__(self, act: Misbehaviour) -> None:
        self._act = act
        self._healthy = ManualClock()

    def now(self) -> float:
        result: float = self._act(self._healthy.now)
        return result


class FaultySource:
    """A policy source that misbehaves; once a hang is released it answers `after_hang`."""

    def __init__(self, act: Misbehaviour, after_hang: Any) -> None:
        self._act = act
        self._after_hang = after_hang

    def read(self) -> BundleFiles:
        result: BundleFiles = self._act(lambda: self._after_hang)
        return result


@pytest.fixture(scope="module")
def bundle() -> PolicyBundle:
    return PolicyBundle.from_directory(BANKING)


@pytest.fixture
def misbehave() -> Iterator[Callable[[Fault], Misbehaviour]]:
    made: list[Misbehaviour] = []

    def make(fault: Fault) -> Misbehaviour:
        made.append(Misbehaviour(fault))
        return made[-1]

    yield make
    for m in made:  # let every hung thread finish
        m.release.set()


def build_gate(
    bundle: PolicyBundle,
    executed: list[tuple[str, dict[str, Any]]],
    *,
    port: str | None = None,
    act: Misbehaviour | None = None,
    timeout: float | None = None,
    store: Any = None,
    source: FaultySource | None = None,
) -> tuple[Gate, Any]:
    """A gate over the banking bundle with `send_money`; the port named is faulty."""
    store = FaultyStore(act) if port == "audit" and act else store or WatchedStore()
    clock = FaultyClock(act) if port == "clock" and act else ManualClock()
    gate = Gate(bundle, source=source, store=store, clock=clock, decision_timeout=timeout)

    def payee(args: Any) -> tuple[str, str]:
        return ("Payee", args["recipient"])

    def faulty_payee(args: Any) -> tuple[str, str]:
        assert act is not None
        result: tuple[str, str] = act(lambda: payee(args))
        return result

    @gate.tool(effect="irreversible", resource=faulty_payee if port == "resource" else payee)
    def send_money(recipient: str, amount: float, subject: str) -> dict[str, str]:
        executed.append(("send_money", {"recipient": recipient, "amount": amount}))
        return SENT

    @gate.tool
    def get_balance() -> float:
        executed.append(("get_balance", {}))
        return 100.0

    if port == "engine" and act:
        gate._engine = FaultyEngine(gate._engine, act)  # type: ignore[assignment]
    return gate, store


# -- engine, audit store, clock, resource rule: raise and garbage ------------

GARBAGE_DECISION_CODES = ("unavailable", "not_permitted")

FAULTS = [
    Fault("engine", "raise", RuntimeError("engine exploded"), "RuntimeError"),
    Fault("engine", "raise", ValueError("bad request"), "ValueError"),
    Fault("engine", "garbage", None, "None"),
    Fault("engine", "garbage", "allow", "str"),
    Fault(
        "engine",
        "garbage",
        SimpleNamespace(allowed="no", policies=(), errors=(), bundle_version="x", mode="enforce"),
        "decision-like-with-str-allowed",
        GARBAGE_DECISION_CODES,
    ),
    Fault(
        "engine",
        "garbage",
        Decision("false", (), (), "x"),  # type: ignore[arg-type]
        "Decision-with-str-allowed",
        GARBAGE_DECISION_CODES,
    ),
    Fault(
        "engine",
        "garbage",
        Decision(True, (), ("error while evaluating policy `p`",), "x"),
        "Decision-allowed-with-errors",
        GARBAGE_DECISION_CODES,
    ),
    Fault(
        "engine",
        "garbage",
        Decision(True, None, None, "x"),  # type: ignore[arg-type]
        "Decision-with-None-fields",
        GARBAGE_DECISION_CODES,
    ),
    Fault("audit", "raise", StoreError("disk on fire"), "StoreError"),
    Fault("audit", "raise", OSError(28, "No space left on device"), "OSError"),
    Fault("audit", "garbage", None, "None"),
    Fault("audit", "garbage", [], "empty-list"),
    Fault("audit", "garbage", "ok", "str"),
    Fault("clock", "raise", RuntimeError("clock unplugged"), "RuntimeError"),
    Fault("clock", "garbage", "noon", "str"),
    Fault("clock", "garbage", math.nan, "nan"),
    Fault("clock", "garbage", math.inf, "inf"),
    Fault("clock", "garbage", None, "None"),
    Fault("resource", "raise", KeyError("recipient"), "KeyError"),
    Fault("resource", "garbage", 42, "int"),
    Fault("resource", "garbage", ("Payee",), "1-tuple"),
    Fault("resource", "garbage", ("Payee", 7), "int-id"),
    Fault("resource", "garbage", None, "None"),
]


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("how", ["call", "acall"])
@pytest.mark.parametrize("timeout", [None, 5.0], ids=["unbounded", "bounded"])
@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_a_port_that_raises_or_answers_garbage_gives_a_refusal_and_the_tool_never_runs(
    fault: Fault,
    timeout: float | None,
    how: str,
    bundle: PolicyBundle,
    misbehave: Callable[[Fault], Misbehaviour],
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    act = misbehave(fault)
    gate, store = build_gate(bundle, executed, port=fault.port, act=act, timeout=timeout)

    result = within(
        RETURN_BOUND, lambda: invoke(how, gate, billing, "send_money", PAYMENT, session)
    )

    assert act.entered.is_set(), "the faulty port was never used"
    assert executed == []
    assert isinstance(result, Refusal)
    assert result.code in fault.codes
    if fault.port == "audit":
        assert store.bodies() == []  # the broken store kept nothing
    else:
        assert_audited_refusal(store, result)
        assert not [b for b in store.bodies() if b["decision"] == "allow"]


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("how", ["call", "acall"])
@pytest.mark.parametrize("port", ["engine", "audit", "clock", "resource"])
def test_the_same_call_runs_when_the_port_doubles_behave(
    port: str,
    how: str,
    bundle: PolicyBundle,
    misbehave: Callable[[Fault], Misbehaviour],
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    act = misbehave(Fault(port, "hang"))
    act.release.set()  # a released hang behaves normally
    gate, store = build_gate(bundle, executed, port=port, act=act, timeout=5.0)

    result = within(
        RETURN_BOUND, lambda: invoke(how, gate, billing, "send_money", PAYMENT, session)
    )

    assert result == SENT
    assert [name for name, _ in executed] == ["send_money"]
    assert [(b["kind"], b["decision"] or b["outcome"]) for b in store.bodies()] == [
        ("decision", "allow"),
        ("outcome", "ok"),
    ]


# -- hangs --------------------------------------------------------------------


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("how", ["call", "acall"])
@pytest.mark.parametrize("port", ["engine", "audit", "clock", "resource"])
def test_a_hung_port_times_out_as_unavailable_and_the_tool_never_runs_even_after_it_wakes(
    port: str,
    how: str,
    bundle: PolicyBundle,
    misbehave: Callable[[Fault], Misbehaviour],
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    act = misbehave(Fault(port, "hang"))
    gate, store = build_gate(bundle, executed, port=port, act=act, timeout=HANG_TIMEOUT)

    result = within(
        RETURN_BOUND, lambda: invoke(how, gate, billing, "send_money", PAYMENT, session)
    )

    assert act.entered.is_set(), "the port never hung"
    assert isinstance(result, Refusal)
    assert result.code == "unavailable"
    assert executed == []

    act.release.set()  # the port wakes and the late decision is an allow

    def settled(bodies: list[dict[str, Any]]) -> bool:
        late = [b for b in bodies if b["kind"] == "outcome" and b["outcome"] == "not_run"]
        return bool(late) and any(b["id"] == result.ref for b in bodies)

    assert store.wait_for(settled), "no not_run outcome was recorded for the late decision"
    assert executed == []
    bodies = store.bodies()
    timed_out = record(store, result.ref)
    assert (timed_out["decision"], timed_out["code"]) == ("deny", "unavailable")
    assert timed_out["reasons"]
    late_allow = [b for b in bodies if b["kind"] == "decision" and b["decision"] == "allow"]
    not_run = [b for b in bodies if b["kind"] == "outcome"]
    assert [b["outcome"] for b in not_run] == ["not_run"]
    assert [b["call"] for b in late_allow] == [b["call"] for b in not_run]


# -- policy source (reload) ----------------------------------------------------


def _truncated(files: BundleFiles) -> BundleFiles:
    (name, text), *rest = files.policies
    return replace(files, policies=((name, text[: len(text) // 2]), *rest))


SOURCE_FAULTS = [
    Fault("source", "raise", OSError(5, "I/O error"), "OSError"),
    Fault("source", "raise", RuntimeError("source exploded"), "RuntimeError"),
    Fault("source", "garbage", None, "None"),
    Fault("source", "garbage", "permit(principal, action, resource);", "str"),
    Fault("source", "garbage", "truncated", "truncated-policy-file"),
    Fault("source", "garbage", BundleFiles(None, None), "BundleFiles-of-None"),  # type: ignore[arg-type]
]


def _source_garbage(fault: Fault, bundle: PolicyBundle) -> Any:
    return _truncated(bundle.files) if fault.value == "truncated" else fault.value


def _assert_still_deciding(
    gate: Gate,
    version: str,
    store: WatchedStore,
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    executed.clear()
    assert within(RETURN_BOUND, lambda: gate.call(billing, "send_money", PAYMENT, session)) == SENT
    negative = {**PAYMENT, "amount": -5.0}
    refused = within(RETURN_BOUND, lambda: gate.call(billing, "send_money", negative, session))
    assert isinstance(refused, Refusal)
    assert (refused.code, refused.policy) == ("not_permitted", "payments.positive")
    assert len(executed) == 1
    decisions = [b for b in store.bodies() if b["kind"] == "decision"]
    assert decisions
    assert {b["bundle_version"] for b in decisions} == {version}


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("fault", SOURCE_FAULTS, ids=str)
def test_a_failing_policy_source_rejects_the_reload_and_the_running_bundle_keeps_deciding(
    fault: Fault,
    bundle: PolicyBundle,
    misbehave: Callable[[Fault], Misbehaviour],
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    act = misbehave(replace(fault, value=_source_garbage(fault, bundle)))
    gate, store = build_gate(bundle, executed, source=FaultySource(act, None))
    before = gate.version

    with pytest.raises(BundleError):
        gate.reload()

    assert act.entered.is_set()
    assert gate.version == before
    _assert_still_deciding(gate, before, store, executed, billing, session)


@pytest.mark.requirement("G1")
def test_decisions_continue_on_the_running_bundle_while_a_reload_hangs_and_the_reload_then_fails(
    bundle: PolicyBundle,
    misbehave: Callable[[Fault], Misbehaviour],
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    act = misbehave(Fault("source", "hang"))
    gate, store = build_gate(bundle, executed, source=FaultySource(act, _truncated(bundle.files)))
    before = gate.version
    outcome: dict[str, BaseException | str] = {}

    def reload() -> None:
        try:
            outcome["version"] = gate.reload()
        except BaseException as exc:
            outcome["error"] = exc

    reloader = threading.Thread(target=reload, daemon=True)
    reloader.start()
    assert act.entered.wait(RETURN_BOUND), "the reload never reached the source"

    _assert_still_deciding(gate, before, store, executed, billing, session)

    act.release.set()
    reloader.join(RETURN_BOUND)
    assert not reloader.is_alive()
    assert isinstance(outcome.get("error"), BundleError)
    assert gate.version == before
    _assert_still_deciding(gate, before, store, executed, billing, session)


@pytest.mark.requirement("G1")
def test_a_healthy_policy_source_double_does_reload(
    bundle: PolicyBundle,
    misbehave: Callable[[Fault], Misbehaviour],
    executed: list[tuple[str, dict[str, Any]]],
) -> None:
    (name, text), *rest = bundle.files.policies
    changed = replace(bundle.files, policies=((name, text + "\n// touched\n"), *rest))
    act = misbehave(Fault("source", "hang"))
    act.release.set()
    gate, _ = build_gate(bundle, executed, source=FaultySource(act, changed))

    assert gate.reload() != bundle.version
    assert gate.version != bundle.version


# -- the policy engine's own answers --------------------------------------------

PROBE_SCHEMA = """
type Session = { id: String, labels: Set<String>, calls: Long };
type Now = { epoch: Long, hour: Long, weekday: Long };
entity Agent;
entity Tool;
action probe appliesTo {
  principal: [Agent],
  resource: [Tool],
  context: { args: { n: Long }, session: Session, now: Now },
};
"""

# The forbid errors (integer overflow) for |n| >= 2; Cedar then skips it and
# answers Allow with an evaluation error, which must not let the call through.
PROBE_POLICIES = """
@id("probe.open")
permit (principal, action == Action::"probe", resource);

@id("probe.zero")
forbid (principal, action == Action::"probe", resource)
when { context.args.n * 4611686018427387904 == 0 };
"""


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    (tmp_path / "schema.cedarschema").write_text(PROBE_SCHEMA)
    (tmp_path / "probe.cedar").write_text(PROBE_POLICIES)
    return tmp_path


def _probe_gate(probe_dir: Path, executed: list[Any], param: type) -> tuple[Gate, WatchedStore]:
    store = WatchedStore()
    gate = Gate.from_directory(probe_dir, store=store, clock=ManualClock())

    def probe(n: Any) -> str:
        executed.append(n)
        return "probed"

    probe.__annotations__ = {"n": param, "return": str}
    gate.tool(probe)
    return gate, store


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("how", ["call", "acall"])
def test_a_context_the_schema_rejects_is_a_deny_that_records_why(
    probe_dir: Path, executed: list[Any], session: Session, how: str
) -> None:
    # The tool sends n as a String; the schema says Long: Cedar answers NoDecision.
    gate, store = _probe_gate(probe_dir, executed, str)

    result = invoke(how, gate, Principal.agent("a"), "probe", {"n": "1"}, session)

    assert executed == []
    assert isinstance(result, Refusal)
    assert result.code == "not_permitted"
    assert result.policy is None
    assert_audited_refusal(store, result)


def test_the_reason_recorded_for_a_rejected_context_does_not_reveal_a_sensitive_argument(
    probe_dir: Path, executed: list[Any], session: Session
) -> None:
    # Not a G1 property itself: the reason G1 makes the audit give must respect redaction.
    store = WatchedStore()
    gate = Gate.from_directory(probe_dir, store=store, clock=ManualClock())

    @gate.tool(sensitive=["n"])
    def probe(n: str) -> str:
        executed.append(n)
        return "probed"

    result = gate.call(Principal.agent("a"), "probe", {"n": "hunter2-secret"}, session)

    assert isinstance(result, Refusal)
    assert executed == []
    assert record(store, result.ref)["args"] == {"n": "[redacted]"}
    assert all(b"hunter2" not in r.raw for r in store.records())


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("how", ["call", "acall"])
def test_an_allow_with_an_evaluation_error_is_a_deny_while_a_clean_allow_runs(
    probe_dir: Path, executed: list[Any], session: Session, how: str
) -> None:
    gate, store = _probe_gate(probe_dir, executed, int)
    agent = Principal.agent("a")

    assert invoke(how, gate, agent, "probe", {"n": 1}, session) == "probed"
    result = invoke(how, gate, agent, "probe", {"n": 4}, session)

    assert executed == [1]
    assert isinstance(result, Refusal)
    assert result.code == "not_permitted"
    assert result.policy is None
    assert_audited_refusal(store, result)


def _cedar_answer(decision: Any, errors: Sequence[str] = (), reasons: Sequence[str] = ()) -> Any:
    return SimpleNamespace(
        decision=decision,
        diagnostics=SimpleNamespace(errors=list(errors), reasons=list(reasons)),
    )


CEDAR_ANSWERS = {
    "NoDecision": _cedar_answer(cedarpy.Decision.NoDecision),
    "NoDecision-with-errors": _cedar_answer(cedarpy.Decision.NoDecision, ["bad request"]),
    "Allow-with-errors": _cedar_answer(cedarpy.Decision.Allow, ["overflow"], ["p"]),
    "Deny": _cedar_answer(cedarpy.Decision.Deny, [], ["payments.positive"]),
    "str-Allow": _cedar_answer("Allow", [], ["payments.small-known"]),
    "None": _cedar_answer(None),
}


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("answer", CEDAR_ANSWERS.values(), ids=CEDAR_ANSWERS.keys())
def test_any_cedar_answer_but_a_clean_allow_is_a_deny(
    answer: Any,
    bundle: PolicyBundle,
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate, store = build_gate(bundle, executed)
    monkeypatch.setattr(cedarpy, "is_authorized", lambda *a, **k: answer)

    result = gate.call(billing, "send_money", PAYMENT, session)

    assert executed == []
    assert isinstance(result, Refusal)
    assert result.code == "not_permitted"
    assert record(store, result.ref)["decision"] == "deny"


@pytest.mark.requirement("G1")
def test_a_clean_cedar_allow_double_lets_the_call_run(
    bundle: PolicyBundle,
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate, _ = build_gate(bundle, executed)
    answer = _cedar_answer(cedarpy.Decision.Allow, [], ["payments.small-known"])
    monkeypatch.setattr(cedarpy, "is_authorized", lambda *a, **k: answer)

    assert gate.call(billing, "send_money", PAYMENT, session) == SENT
    assert len(executed) == 1


# -- real SQLite faults ---------------------------------------------------------


class ReadOnlyFileStore(SQLiteStore):
    """The store over its file opened `mode=ro`: what SQLite does with a file it cannot write.

    (Tests may run as root, where chmod 0o444 does not stop writes.)
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)  # creates the file and its schema
        self._db.close()
        self._db = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )


@pytest.fixture
def sqlite_gate(
    tmp_path: Path, bundle: PolicyBundle, executed: list[tuple[str, dict[str, Any]]]
) -> Iterator[tuple[Gate, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "audit.db", timeout=0.05)
    gate, _ = build_gate(bundle, executed, store=store)
    yield gate, store
    store.close()


def _count(store: SQLiteStore) -> int:
    return len(list(store.records()))


def _fill(store: SQLiteStore) -> int:
    """Append events until not even an empty one fits; return the record count."""
    for pad in (2000, 200, 0):
        for _ in range(100):  # bounded: the file may only grow a few pages
            try:
                store.append(
                    [AuditEntry(kind="event", call="fill", time=0.0, detail={"p": "x" * pad})]
                )
            except StoreError:
                break
        else:
            pytest.fail("the database never filled up")
    return _count(store)


@pytest.mark.requirement("G1")
def test_a_full_disk_refuses_the_call_as_unavailable(
    sqlite_gate: tuple[Gate, SQLiteStore],
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    gate, store = sqlite_gate
    db = store.connection
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 4}")
    filled = _fill(store)

    result = gate.call(billing, "send_money", PAYMENT, session)

    assert executed == []
    assert isinstance(result, Refusal)
    assert result.code == "unavailable"
    assert _count(store) == filled
    db.execute(f"PRAGMA max_page_count = {pages * 1000}")
    assert gate.call(billing, "send_money", PAYMENT, session) == SENT


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("how", ["query_only", "mode=ro"])
def test_a_read_only_database_refuses_the_call_as_unavailable(
    how: str,
    tmp_path: Path,
    bundle: PolicyBundle,
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    path = tmp_path / "audit.db"
    if how == "query_only":
        store = SQLiteStore(path)
        store.connection.execute("PRAGMA query_only = ON")
    else:
        store = ReadOnlyFileStore(path)
    try:
        gate, _ = build_gate(bundle, executed, store=store)

        result = gate.call(billing, "send_money", PAYMENT, session)

        assert executed == []
        assert isinstance(result, Refusal)
        assert result.code == "unavailable"
        assert _count(store) == 0
    finally:
        store.close()


@pytest.mark.requirement("G1")
def test_a_database_locked_by_another_connection_refuses_the_call_as_unavailable(
    sqlite_gate: tuple[Gate, SQLiteStore],
    executed: list[tuple[str, dict[str, Any]]],
    billing: Principal,
    session: Session,
) -> None:
    gate, store = sqlite_gate
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")

        result = within(RETURN_BOUND, lambda: gate.call(billing, "send_money", PAYMENT, session))

        assert executed == []
        assert isinstance(result, Refusal)
        assert result.code == "unavailable"
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert _count(store) == 0
    assert gate.call(billing, "send_money", PAYMENT, session) == SENT
