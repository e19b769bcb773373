"""G6: reload is atomic; once it returns no decision uses the old bundle; shadow never enforces."""

from __future__ import annotations

import functools
import itertools
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from held import HeldStore
from warded import (
    BundleError,
    BundleFiles,
    Gate,
    MemoryStore,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    Store,
)
from warded.policy.source import DirectorySource

BANKING = Path(__file__).resolve().parent.parent / "examples" / "banking" / "policies"
FILES = DirectorySource(BANKING).read()
SUPPORT = Principal.agent("support-bot")
BILLING = Principal.agent("billing-bot")
REVOKE = """
@id("revoke.transactions")
@description("Support may no longer list transactions.")
forbid (principal in Team::"support", action == Action::"get_transactions", resource)
when { context.args.limit > 0 };
"""
WAIT = 20.0  # seconds: the bound on every wait; never reached when the code is right


def with_policies(*extra: tuple[str, str], drop: str | None = None) -> PolicyBundle:
    policies = [(n, t) for n, t in FILES.policies if n != drop]
    return PolicyBundle.load(BundleFiles((*policies, *extra), FILES.schema, FILES.entities))


A = PolicyBundle.load(FILES)  # support may list transactions
B = with_policies(("revoke.cedar", REVOKE))  # ... and now may not: a conditional forbid
C = with_policies(drop="reads.cedar")  # no reads at all: the tools disappear
BROKEN = BundleFiles(
    (
        *FILES.policies,
        ("broken.cedar", "permit (principal, action, resource) when { context.args.nope };"),
    ),
    FILES.schema,
    FILES.entities,
)


class Ran:
    """The tags of every executed call, thread-safe."""

    def __init__(self) -> None:
        self.tags: list[int] = []
        self._lock = threading.Lock()

    def add(self, tag: int) -> None:
        with self._lock:
            self.tags.append(tag)


def make_gate(bundle: PolicyBundle, ran: Ran, store: Store | None = None) -> Gate:
    gate = Gate(bundle, store=store if store is not None else MemoryStore())

    def get_transactions(limit: int) -> int:
        ran.add(limit)
        return limit

    def get_balance() -> float:
        return 100.0

    gate.register(
        "get_transactions",
        {"type": "object", "properties": {"limit": {"type": "integer"}}, "required": ["limit"]},
        get_transactions,
    )
    gate.register("get_balance", {"type": "object", "properties": {}}, get_balance)
    return gate


def decisions(gate: Gate, mode: str = "enforce") -> list[dict[str, Any]]:
    return [
        r.body
        for r in gate.store.records()
        if r.body["kind"] == "decision" and r.body["mode"] == mode
    ]


def by_tag(gate: Gate, mode: str = "enforce") -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for body in decisions(gate, mode):
        if body["tool"] != "get_transactions":
            continue
        tag = body["args"]["limit"]
        assert tag not in out
        out[tag] = body
    return out


def transactions(gate: Gate, tag: int) -> Any:
    return gate.call(SUPPORT, "get_transactions", {"limit": tag}, Session(f"s{tag}"))


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Let threads switch often, so reloads land in the middle of calls."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


# -- single-threaded ---------------------------------------------------------------


@pytest.mark.requirement("G6")
def test_a_revoked_permission_denies_the_very_next_call() -> None:
    ran = Ran()
    gate = make_gate(A, ran)
    assert transactions(gate, 1) == 1
    assert gate.reload(B) == B.version
    answer = transactions(gate, 2)
    assert isinstance(answer, Refusal)
    assert answer.code == "not_permitted"
    assert gate.reload(C) == C.version
    answer = gate.call(SUPPORT, "get_balance", {}, Session("s"))
    assert isinstance(answer, Refusal)
    assert answer.code == "unknown_tool"
    assert gate.tools(SUPPORT) == []
    assert gate.reload(A) == A.version
    assert transactions(gate, 3) == 3
    assert {spec.name for spec in gate.tools(SUPPORT)} == {"get_transactions", "get_balance"}
    assert ran.tags == [1, 3]
    assert [(t, d["bundle_version"]) for t, d in by_tag(gate).items()] == [
        (1, A.version),
        (2, B.version),
        (3, A.version),
    ]


@pytest.mark.requirement("G6")
@pytest.mark.parametrize(
    "bad",
    [BROKEN, BANKING / "does-not-exist", "not a bundle at all"],
    ids=["invalid files", "missing directory", "nonsense path"],
)
def test_a_failed_reload_changes_nothing(bad: Any) -> None:
    ran = Ran()
    gate = make_gate(A, ran)
    gate.reload(B)
    listed = gate.tools(SUPPORT)
    events = [r.body for r in gate.store.records() if r.body["kind"] == "event"]
    with pytest.raises(BundleError):
        gate.reload(bad)
    assert gate.version == B.version
    assert gate.bundle is B
    assert gate.tools(SUPPORT) == listed
    assert [r.body for r in gate.store.records() if r.body["kind"] == "event"] == events
    answer = transactions(gate, 1)
    assert isinstance(answer, Refusal)
    assert answer.code == "not_permitted"
    assert by_tag(gate)[1]["bundle_version"] == B.version
    assert ran.tags == []


# -- shadow mode ---------------------------------------------------------------------


@pytest.mark.requirement("G6")
def test_a_shadow_bundle_is_decided_and_logged_but_never_enforced() -> None:
    ran = Ran()
    gate = make_gate(A, ran)
    assert gate.shadow(B) == B.version
    assert gate.version == A.version
    assert transactions(gate, 1) == 1  # A allows; B would not
    (enforced,) = decisions(gate)
    (shadowed,) = decisions(gate, "shadow")
    assert (enforced["decision"], enforced["bundle_version"]) == ("allow", A.version)
    assert (shadowed["decision"], shadowed["bundle_version"]) == ("deny", B.version)
    assert shadowed["policies"] == ["revoke.transactions"]
    assert shadowed["call"] == enforced["call"]
    assert ran.tags == [1]

    gate.shadow(None)
    assert transactions(gate, 2) == 2
    assert len(decisions(gate, "shadow")) == 1


@pytest.mark.requirement("G6")
def test_a_shadow_bundle_that_would_allow_does_not_let_a_denied_call_run() -> None:
    ran = Ran()
    gate = make_gate(B, ran)
    gate.shadow(A)
    answer = transactions(gate, 1)
    assert isinstance(answer, Refusal)
    assert answer.code == "not_permitted"
    (enforced,) = decisions(gate)
    (shadowed,) = decisions(gate, "shadow")
    assert (enforced["decision"], enforced["bundle_version"]) == ("deny", B.version)
    assert (shadowed["decision"], shadowed["bundle_version"], shadowed["mode"]) == (
        "allow",
        A.version,
        "shadow",
    )
    assert ran.tags == []


@pytest.mark.requirement("G6")
def test_an_invalid_shadow_bundle_is_rejected_and_the_running_shadow_stays() -> None:
    gate = make_gate(A, Ran())
    gate.shadow(B)
    with pytest.raises(BundleError):
        gate.shadow(BROKEN)
    assert transactions(gate, 1) == 1
    (shadowed,) = decisions(gate, "shadow")
    assert shadowed["bundle_version"] == B.version


# -- concurrent reloads ---------------------------------------------------------------

WORKERS = 4
CALLS = 150  # per worker
RELOADS = 40


@pytest.mark.requirement("G6")
@pytest.mark.usefixtures("fast_switching")
def test_calls_racing_reloads_use_a_or_b_and_never_the_old_bundle_after_a_reload_returns() -> None:
    ran = Ran()
    gate = make_gate(A, ran)
    installed = [A.version]  # installed[k]: the version reload k put in place
    begun = 0  # reloads started
    done = 0  # reloads returned
    progress = threading.Condition()
    made = [0] * WORKERS  # calls each worker has finished
    tags = itertools.count(1)
    tag_lock = threading.Lock()
    seen: list[tuple[int, int, int, Any]] = []  # (tag, done before the call, begun after, answer)
    own: list[tuple[int, str]] = []  # the reloader's own call after each reload
    failures: list[BaseException] = []
    start = threading.Barrier(WORKERS + 1, timeout=WAIT)

    def next_tag() -> int:
        with tag_lock:
            return next(tags)

    def moved(was: list[int]) -> bool:
        return all(m > w or m == CALLS for m, w in zip(made, was, strict=True))

    def worker(i: int) -> None:
        try:
            start.wait()
            for _ in range(CALLS):
                tag = next_tag()
                before = done
                answer = transactions(gate, tag)
                after = begun
                seen.append((tag, before, after, answer))
                with progress:
                    made[i] += 1
                    progress.notify_all()
        except BaseException as exc:
            failures.append(exc)
            raise

    def reloader() -> None:
        nonlocal begun, done
        try:
            start.wait()
            for k in range(1, RELOADS + 1):
                # every worker finishes a call between two reloads, so a call that a reload
                # interrupts sees at most one more and settles within the gate's retries, however
                # slowly a loaded machine schedules its thread
                with progress:
                    assert progress.wait_for(functools.partial(moved, list(made)), timeout=WAIT)
                if k % 5 == 0:
                    with pytest.raises(BundleError):
                        gate.reload(BROKEN)
                bundle = B if k % 2 else A
                begun += 1
                assert gate.reload(bundle) == bundle.version
                installed.append(bundle.version)
                done += 1
                tag = next_tag()
                transactions(gate, tag)
                own.append((tag, bundle.version))
        except BaseException as exc:
            failures.append(exc)
            raise

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    threads.append(threading.Thread(target=reloader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT)
    assert not any(t.is_alive() for t in threads)
    assert failures == []

    records = by_tag(gate)
    assert len(records) == WORKERS * CALLS + RELOADS
    for tag, body in records.items():
        assert body["bundle_version"] in {A.version, B.version}
        assert (body["decision"] == "allow") == (body["bundle_version"] == A.version), tag

    # Once reload returns, the reloading thread's next call is decided by the new bundle.
    for tag, version in own:
        assert records[tag]["bundle_version"] == version

    # A call that started after reload k returned and finished before reload k+1 began
    # was decided under reload k's bundle, whatever thread made it.
    checked = {A.version: 0, B.version: 0}
    for tag, before, after, answer in seen:
        assert (answer == tag) == (records[tag]["decision"] == "allow")
        if after == before:
            assert records[tag]["bundle_version"] == installed[before], tag
            checked[installed[before]] += 1
    assert min(checked.values()) > 0

    # Only calls decided under A ran, each once, and their outcomes carry that version.
    allowed = sorted(t for t, b in records.items() if b["decision"] == "allow")
    assert sorted(ran.tags) == allowed
    outcomes = [r.body for r in gate.store.records() if r.body["kind"] == "outcome"]
    decided = {b["call"]: b["bundle_version"] for b in records.values()}
    assert len(outcomes) == len(allowed)
    for outcome in outcomes:
        assert outcome["bundle_version"] == decided[outcome["call"]] == A.version


# -- a call held between its decision and its commit ------------------------------------


def held_store(kind: str, tmp_path: Path) -> HeldStore:
    return HeldStore(MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "g6.db"))


@pytest.mark.requirement("G6")
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize(
    ("new", "code"), [(B, "not_permitted"), (C, "unknown_tool")], ids=["revoked", "tool removed"]
)
def test_a_call_decided_before_reload_returned_is_decided_again_on_the_new_bundle(
    kind: str, new: PolicyBundle, code: str, tmp_path: Path
) -> None:
    ran = Ran()
    store = held_store(kind, tmp_path)
    gate = make_gate(A, ran, store)  # type: ignore[arg-type]
    answers: list[Any] = []
    caller = threading.Thread(target=lambda: answers.append(transactions(gate, 7)))

    caller.start()
    assert store.arrived.wait(WAIT), "the call never reached its commit"
    assert gate.reload(new) == new.version  # the call was decided on A and is not recorded yet
    store.release.set()
    caller.join(WAIT)

    assert not caller.is_alive()
    (answer,) = answers
    assert isinstance(answer, Refusal)
    assert answer.code == code
    assert ran.tags == []
    records = [r.body for r in store.records() if r.body["kind"] == "decision"]
    assert [(b["decision"], b["bundle_version"]) for b in records] == [("deny", new.version)]
    assert records[0]["id"] == answer.ref
    assert not [r for r in store.records() if r.body["kind"] == "outcome"]


@pytest.mark.requirement("G6")
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_threads_racing_reloads_never_commit_an_allow_of_a_bundle_already_replaced(
    kind: str, tmp_path: Path
) -> None:
    """The chain orders every decision's transaction with every reload's: walking it,
    each allow must carry the version the latest reload before it installed."""
    ran = Ran()
    store: Store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "g6.db")
    gate = make_gate(A, ran, store)
    workers, reloads = 3, 16
    generation = 0  # how many reloads have returned
    finished: dict[int, set[int]] = {}  # generation -> workers that finished a call begun in it
    stop = False
    progress = threading.Condition()
    tags = itertools.count(1)
    failures: list[BaseException] = []
    start = threading.Barrier(workers + 1, timeout=WAIT)

    def worker(me: int) -> None:
        try:
            start.wait()
            while True:
                with progress:
                    if stop:
                        return
                    begun, tag = generation, next(tags)
                transactions(gate, tag)
                with progress:
                    finished.setdefault(begun, set()).add(me)
                    progress.notify_all()
        except BaseException as exc:
            failures.append(exc)

    def reloader() -> None:
        nonlocal generation, stop
        try:
            start.wait()
            for k in range(reloads + 1):
                with progress:  # every worker decides a call under each version
                    now = finished.setdefault(generation, set())
                    assert progress.wait_for(lambda now=now: len(now) == workers, WAIT)
                if k == reloads:
                    break
                gate.reload(B if k % 2 == 0 else A)
                with progress:
                    generation += 1
        except BaseException as exc:
            failures.append(exc)
        finally:
            with progress:
                stop = True

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    threads.append(threading.Thread(target=reloader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert failures == []

    live = A.version
    allowed: list[int] = []
    swaps = 0
    for record in store.records():
        body = record.body
        if body["kind"] == "event" and body["detail"].get("event") == "reload":
            assert body["detail"]["from"] == live
            live = body["detail"]["to"]
            swaps += 1
        elif body["kind"] == "decision" and body["decision"] == "allow":
            assert body["bundle_version"] == live, body["args"]
            allowed.append(body["args"]["limit"])
    assert swaps == reloads
    assert sorted(ran.tags) == sorted(allowed)
    decided = [r for r in store.records() if r.body["kind"] == "decision"]
    assert 0 < len(allowed) < len(decided)  # decisions under both bundles


# -- a call that never settles ---------------------------------------------------------

A_AGAIN = with_policies(  # decides as A does, under another version
    (
        "again.cedar",
        '@id("again.negative")\n'
        'forbid (principal in Team::"support", action == Action::"get_transactions", resource)\n'
        "when { context.args.limit < 0 };",
    )
)


class ReloadingStore:
    """A store that installs the other of A and A_AGAIN before each transaction the
    call opens: every decision is stale by the time it would be committed."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.gate: Gate | None = None
        self.reloads = 0

    def transaction(self, *, durable: bool = True) -> Any:
        gate, self.gate = self.gate, None  # the reload's own transactions pass through
        if gate is not None:
            gate.reload(A_AGAIN if gate.version == A.version else A)
            self.reloads += 1
            self.gate = gate
        return self.inner.transaction(durable=durable)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.requirement("G6")
def test_a_call_whose_every_decision_goes_stale_is_refused_and_its_arguments_recorded() -> None:
    ran = Ran()
    store = ReloadingStore(MemoryStore())
    gate = make_gate(A, ran, store)  # type: ignore[arg-type]
    store.gate = gate
    answer = transactions(gate, 7)
    store.gate = None
    assert isinstance(answer, Refusal)
    assert answer.code == "unavailable"
    assert ran.tags == []
    assert store.reloads >= 5
    (record,) = [b for b in decisions(gate) if b["id"] == answer.ref]
    assert (record["decision"], record["code"]) == ("deny", "unavailable")
    assert record["args"] == {"limit": 7}
    assert record["args_digest"]
    assert "changed during every attempt" in record["reasons"][0]
