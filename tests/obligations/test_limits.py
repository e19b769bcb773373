"""G10 limits hold: budgets and rates are never exceeded, under threads, across windows.

The ledger bundle (tests/obligations/bundles/ledger) declares
`@budget("args.amount 1000/day")` on `spend`, `@budget("args.amount 1/day")`
on `tip` (a decimal amount), `@rate("3/minute")` shared by `ping` and `poke`,
and `@rate("2/minute per tool")` on `tick` and `tock`. Counting side effects
is the ground truth: whatever the gate answers, a tool that ran left a line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from warded import (
    AuditEntry,
    AuditRecord,
    Gate,
    ManualClock,
    MemoryStore,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    Store,
    ToolFailure,
)
from warded.store import Tx

LEDGER = Path(__file__).resolve().parent / "bundles" / "ledger"
OPS = Principal.agent("ops-bot")
OTHER = Principal.agent("other-bot")
DAY, MINUTE = 86400, 60
START = 1_767_225_600  # 2026-01-01T00:00:00Z, the ManualClock default
BUDGET = Decimal(1000)
SPEND_KEY = f"budget|ledger.spend|{OPS}"
BARRIER_BOUND = 10.0
JOIN_BOUND = 30.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def effects() -> list[tuple[str, Any]]:
    """(tool, amount or n) for every tool run that completed its side effect."""
    return []


def ledger_gate(
    store: Store, clock: ManualClock, effects: list[tuple[str, Any]], **kw: Any
) -> Gate:
    gate = Gate.from_directory(LEDGER, store=store, clock=clock, **kw)
    lock = threading.Lock()

    def spend(memo: str, amount: int | None = None) -> str:
        if memo.startswith("fail"):
            raise RuntimeError("the bank said no")
        with lock:
            effects.append(("spend", amount))
        return "spent"

    gate.register(
        "spend",
        {
            "type": "object",
            "properties": {"amount": {"type": "integer"}, "memo": {"type": "string"}},
            "required": ["memo"],
            "additionalProperties": False,
        },
        spend,
        effect="irreversible",
        atomic=True,  # "the bank said no": nothing happened
    )

    @gate.tool(effect="irreversible")
    def tip(amount: float) -> str:
        with lock:
            effects.append(("tip", amount))
        return "tipped"

    for name in ("ping", "poke", "tick", "tock"):

        def counted(n: int, _name: str = name) -> int:
            if n < 0:
                raise RuntimeError("down")
            with lock:
                effects.append((_name, n))
            return n

        gate.register(
            name,
            {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
            counted,
        )
    return gate


@pytest.fixture
def gate(store: Store, clock: ManualClock, effects: list[tuple[str, Any]]) -> Gate:
    return ledger_gate(store, clock, effects)


def code(result: object) -> str:
    return result.code if isinstance(result, Refusal) else "ran"


def race(k: int, call: Callable[[int], object]) -> list[object]:
    """Run `call(i)` on k threads released together by a barrier; return the results."""
    barrier = threading.Barrier(k, timeout=BARRIER_BOUND)
    results: list[object] = [None] * k
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = call(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_BOUND)
    assert not any(t.is_alive() for t in threads), "a racing caller did not finish"
    assert not errors, errors
    return results


def spent(store: Store, when: float = START) -> Decimal:
    return store.counter(SPEND_KEY, int(when) // DAY * DAY)


# -- concurrency ------------------------------------------------------------------


@pytest.mark.requirement("G10")
@pytest.mark.parametrize(("k", "cost"), [(12, 150), (10, 333), (8, 1000), (6, 1001)])
def test_concurrent_callers_never_spend_more_than_the_budget(
    k: int, cost: int, gate: Gate, effects: list[Any]
) -> None:
    results = race(
        k, lambda i: gate.call(OPS, "spend", {"amount": cost, "memo": f"m{i}"}, Session(f"s{i}"))
    )

    most = int(BUDGET // cost)
    assert len(effects) == most
    assert sorted(code(r) for r in results) == ["limit_exceeded"] * (k - most) + ["ran"] * most
    assert spent(gate.store) == most * cost


@pytest.mark.requirement("G10")
def test_concurrent_callers_get_exactly_the_rate_limit(gate: Gate, effects: list[Any]) -> None:
    results = race(9, lambda i: gate.call(OPS, "ping", {"n": i}, Session(f"s{i}")))

    assert len(effects) == 3
    assert sorted(code(r) for r in results) == ["limit_exceeded"] * 6 + ["ran"] * 3


@pytest.mark.requirement("G10")
def test_failing_tools_racing_for_a_budget_never_let_committed_spend_exceed_it(
    gate: Gate, effects: list[Any]
) -> None:
    results = race(
        16,
        lambda i: gate.call(
            OPS,
            "spend",
            {"amount": 300, "memo": ("fail" if i % 2 else "ok") + str(i)},
            Session("s"),
        ),
    )

    succeeded = sum(1 for r in results if r == "spent")
    assert succeeded == len(effects) <= 3
    assert spent(gate.store) == 300 * succeeded <= BUDGET
    assert all(
        r == "spent" or isinstance(r, ToolFailure) or code(r) == "limit_exceeded" for r in results
    )


# -- windows ------------------------------------------------------------------------


@pytest.mark.requirement("G10")
def test_a_spent_budget_refuses_until_the_next_utc_day(
    gate: Gate, clock: ManualClock, effects: list[Any]
) -> None:
    s = Session("s")
    assert gate.call(OPS, "spend", {"amount": 1000, "memo": "all"}, s) == "spent"
    clock.set(START + DAY - 1)  # 23:59:59 the same day
    late = gate.call(OPS, "spend", {"amount": 1, "memo": "late"}, s)

    clock.set(START + DAY)  # midnight UTC
    fresh = [gate.call(OPS, "spend", {"amount": 500, "memo": f"n{i}"}, s) for i in range(3)]

    assert code(late) == "limit_exceeded"
    assert [code(r) for r in fresh] == ["ran", "ran", "limit_exceeded"]
    assert spent(gate.store, START) == 1000
    assert spent(gate.store, START + DAY) == 1000
    assert effects == [("spend", 1000), ("spend", 500), ("spend", 500)]


@pytest.mark.requirement("G10")
def test_a_rate_limit_allows_exactly_its_count_in_each_window(
    gate: Gate, clock: ManualClock, effects: list[Any]
) -> None:
    s = Session("s")
    per_window = []
    for offset in (0, MINUTE - 1, MINUTE, 2 * MINUTE + 30):
        clock.set(START + offset)
        per_window.append([code(gate.call(OPS, "ping", {"n": offset}, s)) for _ in range(4)])

    assert per_window == [
        ["ran", "ran", "ran", "limit_exceeded"],
        ["limit_exceeded"] * 4,
        ["ran", "ran", "ran", "limit_exceeded"],
        ["ran", "ran", "ran", "limit_exceeded"],
    ]
    assert len(effects) == 9


@pytest.mark.requirement("G10")
def test_a_shared_rate_counts_every_tool_its_permit_covers(gate: Gate, effects: list[Any]) -> None:
    s = Session("s")
    calls = ["ping", "poke", "poke", "ping", "poke"]

    results = [code(gate.call(OPS, name, {"n": 1}, s)) for name in calls]

    assert results == ["ran", "ran", "ran", "limit_exceeded", "limit_exceeded"]


@pytest.mark.requirement("G10")
def test_a_per_tool_rate_counts_each_tool_apart(gate: Gate, effects: list[Any]) -> None:
    s = Session("s")
    calls = ["tick", "tock", "tick", "tock", "tick", "tock"]

    results = [code(gate.call(OPS, name, {"n": 1}, s)) for name in calls]

    assert results == ["ran"] * 4 + ["limit_exceeded"] * 2


@pytest.mark.requirement("G10")
def test_each_principal_has_its_own_budget(gate: Gate, effects: list[Any]) -> None:
    s = Session("s")
    results = [
        code(gate.call(who, "spend", {"amount": 600, "memo": "m"}, s))
        for who in (OPS, OTHER, OPS, OTHER)
    ]

    assert results == ["ran", "ran", "limit_exceeded", "limit_exceeded"]


@pytest.mark.requirement("G10")
def test_decimal_amounts_add_up_exactly(gate: Gate, effects: list[Any]) -> None:
    s = Session("s")

    results = [code(gate.call(OPS, "tip", {"amount": 0.1}, s)) for _ in range(11)]

    # ten tips of 0.1 are exactly the budget of 1; binary floats would miss it either way
    assert results == ["ran"] * 10 + ["limit_exceeded"]
    assert gate.store.counter(f"budget|ledger.tip|{OPS}", START) == Decimal(1)


# -- release -------------------------------------------------------------------------


@pytest.mark.requirement("G10")
def test_a_tool_that_raises_releases_its_reservation(gate: Gate, effects: list[Any]) -> None:
    s = Session("s")

    failed = gate.call(OPS, "spend", {"amount": 600, "memo": "fail-1"}, s)
    after_failure = spent(gate.store)
    whole = gate.call(OPS, "spend", {"amount": 1000, "memo": "ok"}, s)

    assert isinstance(failed, ToolFailure)
    assert after_failure == 0
    assert whole == "spent"
    assert spent(gate.store) == 1000


@pytest.mark.requirement("G10")
@pytest.mark.parametrize("atomic", [False, True])
def test_a_tool_that_spends_and_then_raises_keeps_its_budget_unless_declared_atomic(
    store: Store, clock: ManualClock, atomic: bool
) -> None:
    gate = Gate.from_directory(LEDGER, store=store, clock=clock)
    transfers: list[int] = []

    def spend(memo: str, amount: int) -> str:
        if not atomic:
            transfers.append(amount)  # the transfer was accepted ...
        raise TimeoutError("... and then the bank's answer timed out")

    schema = {
        "type": "object",
        "properties": {"amount": {"type": "integer"}, "memo": {"type": "string"}},
        "required": ["memo", "amount"],
    }
    gate.register("spend", schema, spend, atomic=atomic)

    failed = gate.call(OPS, "spend", {"amount": 700, "memo": "m"}, Session("s"))
    again = gate.call(OPS, "spend", {"amount": 700, "memo": "m2"}, Session("s"))

    assert isinstance(failed, ToolFailure)
    assert spent(store) == (0 if atomic else 700)
    assert isinstance(again, ToolFailure) if atomic else code(again) == "limit_exceeded"
    assert sum(transfers) <= BUDGET
    outcome = next(r.body for r in store.records() if r.body["kind"] == "outcome")
    assert ("released" in outcome["detail"]) is atomic


@pytest.mark.requirement("G10")
def test_a_failed_call_keeps_its_rate_slot_so_failing_attempts_are_limited_too(
    gate: Gate, effects: list[Any]
) -> None:
    s = Session("s")

    failed = gate.call(OPS, "ping", {"n": -1}, s)
    after = [code(gate.call(OPS, "ping", {"n": i}, s)) for i in range(3)]

    assert isinstance(failed, ToolFailure)
    assert after == ["ran", "ran", "limit_exceeded"]


@pytest.mark.requirement("G10")
def test_a_release_after_midnight_returns_the_amount_to_the_day_it_was_reserved_in(
    store: Store, clock: ManualClock, effects: list[Any]
) -> None:
    gate = Gate.from_directory(LEDGER, store=store, clock=clock)

    def spend(memo: str, amount: int | None = None) -> str:
        clock.set(START + DAY)  # the tool runs across midnight, then fails
        raise RuntimeError("timeout")

    gate.register(
        "spend",
        {
            "type": "object",
            "properties": {"amount": {"type": "integer"}, "memo": {"type": "string"}},
            "required": ["memo"],
        },
        spend,
        atomic=True,
    )
    clock.set(START + DAY - 1)

    failed = gate.call(OPS, "spend", {"amount": 900, "memo": "m"}, Session("s"))

    assert isinstance(failed, ToolFailure)
    assert spent(store, START) == 0
    assert spent(store, START + DAY) == 0


class HeldStore:
    """Delegates to a store; the transaction recording an allowing decision waits,
    open, until the test lets it go. `outcome` is set once an outcome commits."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.holding = threading.Event()
        self.let_go = threading.Event()
        self.outcome = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[Tx]:
        held = HeldTx(self)
        with self.inner.transaction(durable=durable) as tx:
            held.tx = tx
            yield held  # type: ignore[misc]
        if held.wrote_outcome:
            self.outcome.set()

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._transaction(durable)


class HeldTx:
    def __init__(self, owner: HeldStore) -> None:
        self.owner = owner
        self.tx: Tx
        self.wrote_outcome = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tx, name)

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        if any(e.decision == "allow" for e in entries):
            self.owner.holding.set()
            assert self.owner.let_go.wait(JOIN_BOUND)
        self.wrote_outcome |= any(e.kind == "outcome" for e in entries)
        return self.tx.append(entries)


@pytest.mark.requirement("G10")
def test_a_call_whose_decision_timed_out_after_reserving_gives_the_amount_back(
    clock: ManualClock, effects: list[Any]
) -> None:
    store = HeldStore(MemoryStore())
    gate = ledger_gate(store, clock, effects, decision_timeout=0.2)  # type: ignore[arg-type]
    s = Session("s")

    timed_out = gate.call(OPS, "spend", {"amount": 600, "memo": "slow"}, s)
    reserved_while_held = store.holding.is_set()
    store.let_go.set()
    assert store.outcome.wait(JOIN_BOUND), "the late decision never recorded its outcome"

    assert code(timed_out) == "unavailable"
    assert reserved_while_held
    assert effects == []
    outcome = next(r.body for r in store.records() if r.body["kind"] == "outcome")
    assert outcome["outcome"] == "not_run"
    assert spent(store) == 0  # type: ignore[arg-type]
    assert gate.call(OPS, "spend", {"amount": 1000, "memo": "whole"}, s) == "spent"


# -- what may not be charged ------------------------------------------------------------


@pytest.mark.requirement("G10")
@pytest.mark.parametrize(
    "args",
    [{"amount": -500, "memo": "refund"}, {"memo": "no amount"}, {"amount": -1, "memo": "x"}],
    ids=["negative", "missing", "minus-one"],
)
def test_a_negative_or_missing_budget_amount_is_refused_and_spends_nothing(
    args: dict[str, Any], gate: Gate, effects: list[Any]
) -> None:
    s = Session("s")
    assert gate.call(OPS, "spend", {"amount": 1000, "memo": "all"}, s) == "spent"

    result = gate.call(OPS, "spend", args, s)
    after = gate.call(OPS, "spend", {"amount": 1, "memo": "one more"}, s)

    assert code(result) == "invalid_arguments"
    assert code(after) == "limit_exceeded"
    assert effects == [("spend", 1000)]
    assert spent(gate.store) == 1000
    assert isinstance(result, Refusal)
    record = next(r.body for r in gate.store.records() if r.body["id"] == result.ref)
    assert (record["decision"], record["code"]) == ("deny", "invalid_arguments")


@pytest.mark.requirement("G10")
def test_a_call_over_the_whole_budget_spends_nothing(gate: Gate, effects: list[Any]) -> None:
    s = Session("s")

    too_much = gate.call(OPS, "spend", {"amount": 1001, "memo": "big"}, s)
    exactly = gate.call(OPS, "spend", {"amount": 1000, "memo": "all"}, s)

    assert (code(too_much), exactly) == ("limit_exceeded", "spent")
    assert effects == [("spend", 1000)]


@pytest.mark.requirement("G10")
def test_dry_runs_and_held_calls_reserve_nothing(gate: Gate, effects: list[Any]) -> None:
    s = Session("s")

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def transfer(recipient: str, amount: int, memo: str) -> str:
        return "sent"

    for _ in range(5):
        gate.decide(OPS, "spend", {"amount": 1000, "memo": "m"}, s)
        gate.decide(OPS, "ping", {"n": 1}, s)
    held = gate.call(
        OPS, "transfer", {"recipient": "GB33BUKB20201555555555", "amount": 5000, "memo": "m"}, s
    )

    assert code(held) == "approval_required"
    assert spent(gate.store) == 0
    assert gate.store.counter(f"budget|ledger.transfer|{OPS}", START) == 0
    assert [code(gate.call(OPS, "ping", {"n": i}, s)) for i in range(3)] == ["ran"] * 3
    assert gate.call(OPS, "spend", {"amount": 1000, "memo": "m"}, s) == "spent"


@pytest.mark.requirement("G10")
def test_a_spent_budget_stays_spent_across_a_restart(
    tmp_path: Path, clock: ManualClock, effects: list[Any]
) -> None:
    path = tmp_path / "store.db"
    first = SQLiteStore(path)
    assert (
        ledger_gate(first, clock, effects).call(
            OPS, "spend", {"amount": 800, "memo": "m"}, Session("s")
        )
        == "spent"
    )
    first.close()

    second = SQLiteStore(path)
    try:
        again = ledger_gate(second, clock, effects).call(
            OPS, "spend", {"amount": 201, "memo": "m"}, Session("s")
        )
        assert code(again) == "limit_exceeded"
        assert spent(second) == 800
    finally:
        second.close()


# -- atomic tools --------------------------------------------------------------------


def _atomic_gate(store: Store, clock: ManualClock, atomic: bool, exc: BaseException) -> Gate:
    from tiny import tiny

    bundle = tiny(
        {"pay": "{ amount: Long }"},
        '@id("pay")\n@budget("args.amount 100/day")\n@rate("2/minute")\n'
        "permit (principal, action, resource);\n",
    )
    gate = Gate(bundle, store=store, clock=clock)

    def pay(amount: int) -> str:
        raise exc

    schema = {"type": "object", "properties": {"amount": {"type": "integer"}}}
    gate.register("pay", schema, pay, atomic=atomic)
    return gate


@pytest.mark.requirement("G10")
@pytest.mark.parametrize("atomic", [False, True])
@pytest.mark.parametrize(
    "exc", [RuntimeError("declined"), SystemExit(1)], ids=["Exception", "BaseException"]
)
def test_an_atomic_tool_that_raises_gives_back_its_budget_but_never_its_rate_slot(
    store: Store, clock: ManualClock, atomic: bool, exc: BaseException
) -> None:
    gate = _atomic_gate(store, clock, atomic, exc)
    bot = Principal.agent("bot")
    budget_key, rate_key = f"budget|pay|{bot}", f"rate|pay|{bot}"

    first = gate.call(bot, "pay", {"amount": 100}, Session("s"))
    second = gate.call(bot, "pay", {"amount": 100}, Session("s"))
    third = gate.call(bot, "pay", {"amount": 1}, Session("s"))

    assert isinstance(first, ToolFailure)
    # atomic: nothing happened, so the whole budget is there for the second attempt
    assert isinstance(second, ToolFailure) if atomic else code(second) == "limit_exceeded"
    assert store.counter(budget_key, START) == (0 if atomic else 100)
    # a rate counts attempts: an atomic tool's two failures used both slots (the
    # third is refused by the rate); otherwise the second was refused by the budget
    assert code(third) == "limit_exceeded"
    assert store.counter(rate_key, START) == (2 if atomic else 1)
    released = [
        r["key"]
        for body in (r.body for r in store.records())
        if body["kind"] == "outcome"
        for r in body["detail"].get("released", ())
    ]
    assert released == ([budget_key, budget_key] if atomic else [])
