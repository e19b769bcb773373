"""Stateful model tests: random operation sequences against plain-dict models.

Three machines, each run on the in-memory store and on SQLite:

- the approval lifecycle through a Gate (request, approve, deny, retry,
  run_approved, clock advance, reload) against a dict of statuses (G8, G9);
- reserve/release on raw store transactions, committed or rolled back,
  against a dict of counters (G10);
- budgeted and rate-limited calls through a Gate, with tools that fail and a
  clock that moves, against a dict of what each window has spent (G10).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from store_backends import BACKENDS, Fresh
from warded import (
    ApprovalError,
    Approver,
    BundleFiles,
    Gate,
    ManualClock,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    ToolFailure,
    verify,
)
from warded.obligations.limits import Reservation
from warded.policy.source import DirectorySource

HERE = Path(__file__).resolve().parent
BANKING = HERE.parent.parent / "examples" / "banking" / "policies"
LEDGER = HERE / "bundles" / "ledger"
NOW = 1_767_225_600.0
TTL = 300.0
DAY, MINUTE = 86400, 60
KNOWN = "GB33BUKB20201555555555"
CALLS = [
    {"recipient": KNOWN, "amount": 1200, "subject": "a"},
    {"recipient": KNOWN, "amount": 1300, "subject": "b"},
    {"recipient": KNOWN, "amount": 4999, "subject": "c"},
]
APPROVERS = {
    "alice": Approver("alice", frozenset({"finance"})),
    "billing-bot": Approver("billing-bot", frozenset({"finance"})),
    "mallory": Approver("mallory", frozenset({"audit"})),
}
BILLING = Principal.agent("billing-bot")
OPS = Principal.agent("ops-bot")


def _variant() -> PolicyBundle:
    files = DirectorySource(BANKING).read()
    policies = tuple((n, t + "\n// revised\n") for n, t in files.policies)
    return PolicyBundle.load(BundleFiles(policies, files.schema, files.entities))


BUNDLES = (PolicyBundle.from_directory(BANKING), _variant())
LEDGER_BUNDLE = PolicyBundle.from_directory(LEDGER)


def _settings(kind: str, examples: int) -> settings:
    # derandomized: every store runs the same sequences; PostgreSQL (a round trip
    # per statement) runs the first quarter of them
    return settings(
        max_examples=examples // 4 if kind == "postgres" else examples,
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# -- the approval lifecycle --------------------------------------------------------------


@dataclass
class Modelled:
    call: int
    stored: str
    expires: float
    version: str


class ApprovalLifecycle(RuleBasedStateMachine):
    def __init__(self, fresh: Fresh) -> None:
        super().__init__()
        self.fresh = fresh
        self.store = fresh.new()
        self.clock = ManualClock(NOW)
        self.version = 0
        self.gate = Gate(BUNDLES[0], store=self.store, clock=self.clock, approval_ttl=TTL)
        self.sent: list[dict[str, Any]] = []

        @self.gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
        def send_money(recipient: str, amount: float, subject: str) -> str:
            self.sent.append({"recipient": recipient, "amount": amount, "subject": subject})
            return "sent"

        self.session = Session("model")
        self.model: dict[str, Modelled] = {}
        self.runs: Counter[int] = Counter()

    def teardown(self) -> None:
        try:
            assert verify(self.gate.store.records()).ok
        finally:
            self.fresh.done(self.store)

    # the model

    def now(self) -> float:
        return self.clock.now()

    def shown(self, a: Modelled) -> str:
        if a.stored in ("pending", "approved") and self.now() >= a.expires:
            return "expired"
        return a.stored

    def open_for(self, k: int) -> tuple[str, Modelled] | None:
        found = [
            (i, a)
            for i, a in self.model.items()
            if a.call == k and a.version == BUNDLES[self.version].version
            if a.stored in ("pending", "approved")
        ]
        assert len(found) <= 1, "two open approvals for one call"
        return found[0] if found else None

    def expect_call(self, k: int, result: object) -> None:
        """What a call (or run_approved) of CALLS[k] must have done, and update the model."""
        current = self.open_for(k)
        if current is not None:
            approval_id, a = current
            if self.now() < a.expires and a.stored == "approved":
                assert result == "sent", result
                a.stored = "consumed"
                self.runs[k] += 1
                return
            if self.now() < a.expires:
                assert isinstance(result, Refusal), result
                assert (result.code, result.approval_id) == ("approval_required", approval_id)
                return
            a.stored = "expired"
        assert isinstance(result, Refusal), result
        assert result.code == "approval_required"
        assert result.approval_id is not None
        assert result.approval_id not in self.model
        self.model[result.approval_id] = Modelled(
            k, "pending", self.now() + TTL, BUNDLES[self.version].version
        )

    # the rules

    requested = Bundle("requested")

    @initialize(target=requested)
    def an_approved_call(self) -> str:
        """Start most runs from an approval already granted, where consumption is one step away."""
        self.expect_call(0, self.gate.call(BILLING, "send_money", dict(CALLS[0]), self.session))
        (approval_id,) = self.model
        self.gate.approvals.approve(approval_id, APPROVERS["alice"])
        self.model[approval_id].stored = "approved"
        return approval_id

    @rule(target=requested, k=st.sampled_from(range(len(CALLS))))
    def request(self, k: int) -> Any:
        before = set(self.model)
        self.expect_call(k, self.gate.call(BILLING, "send_money", dict(CALLS[k]), self.session))
        return multiple(*(set(self.model) - before))

    @rule(approval_id=requested)
    def run_approved(self, approval_id: str) -> None:
        a = self.model[approval_id]
        if self.shown(a) != "approved":
            with pytest.raises(ApprovalError):
                self.gate.run_approved(approval_id, self.session)
            return
        self.expect_call(a.call, self.gate.run_approved(approval_id, self.session))

    @rule(
        approval_id=requested,
        verdict=st.sampled_from(["approved", "approved", "denied"]),
        who=st.sampled_from(["alice", "alice", "alice", "billing-bot", "mallory"]),
    )
    def decide(self, approval_id: str, verdict: str, who: str) -> None:
        a = self.model[approval_id]
        decide = self.gate.approvals.approve if verdict == "approved" else self.gate.approvals.deny
        problem: str | None = None
        if a.stored == "pending" and self.now() >= a.expires:
            a.stored, problem = "expired", "expired"
        elif a.stored != "pending":
            problem = "not_pending"
        elif who == "billing-bot":
            problem = "self_approval"
        elif who == "mallory":
            problem = "not_in_group"
        if problem is None:
            decided = decide(approval_id, APPROVERS[who])
            assert (decided.status, decided.decided_by) == (verdict, who)
            a.stored = verdict
        else:
            with pytest.raises(ApprovalError) as err:
                decide(approval_id, APPROVERS[who])
            assert err.value.problem == problem

    @rule(seconds=st.sampled_from([TTL, TTL / 2, TTL - 1, 1.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reload_other(self) -> None:
        self.version = 1 - self.version
        assert self.gate.reload(BUNDLES[self.version]) == BUNDLES[self.version].version
        for a in self.model.values():
            if a.stored in ("pending", "approved") and a.version != BUNDLES[self.version].version:
                a.stored = "voided"

    @rule()
    def reload_same(self) -> None:
        self.gate.reload(BUNDLES[self.version])

    # what must always hold

    @invariant()
    def statuses_match_the_model(self) -> None:
        actual = {a.id: a.status for a in self.gate.approvals.approvals()}
        assert actual == {i: self.shown(a) for i, a in self.model.items()}

    @invariant()
    def each_call_ran_once_per_consumed_approval(self) -> None:
        consumed = Counter(a.call for a in self.model.values() if a.stored == "consumed")
        assert consumed == +self.runs
        assert len(self.sent) == sum(self.runs.values())
        assert Counter(CALLS.index(s) for s in self.sent) == +self.runs


@pytest.mark.requirement("G8")
@pytest.mark.parametrize("kind", BACKENDS)
def test_the_approval_lifecycle_follows_its_model(kind: str) -> None:
    with Fresh(kind) as fresh:
        run_state_machine_as_test(lambda: ApprovalLifecycle(fresh), settings=_settings(kind, 80))


# -- reserve and release on store transactions -------------------------------------------

KEYS = [("budget|a", 0, Decimal(10)), ("budget|a", 86400, Decimal(10)), ("rate|b", 0, Decimal(3))]
AMOUNTS = st.sampled_from(
    [Decimal(0), Decimal("0.1"), Decimal(1), Decimal(2), Decimal(5), Decimal(11)]
)


class Abort(Exception):
    pass


class Limiter(RuleBasedStateMachine):
    reserved = Bundle("reserved")

    def __init__(self, fresh: Fresh) -> None:
        super().__init__()
        self.fresh = fresh
        self.store = fresh.new()
        self.model: dict[tuple[str, int], Decimal] = {(k, w): Decimal(0) for k, w, _ in KEYS}

    def teardown(self) -> None:
        self.fresh.done(self.store)

    @rule(
        target=reserved,
        wanted=st.lists(
            st.tuples(st.sampled_from(range(len(KEYS))), AMOUNTS), min_size=1, max_size=3
        ),
        commit=st.booleans(),
    )
    def reserve(self, wanted: list[tuple[int, Decimal]], commit: bool) -> Any:
        scratch = dict(self.model)
        granted = []
        try:
            with self.store.transaction() as tx:
                for index, amount in wanted:
                    key, window, limit = KEYS[index]
                    r = Reservation(key, window, amount, limit)
                    fits = scratch[(key, window)] + amount <= limit
                    assert tx.reserve(r) == fits
                    if fits:
                        scratch[(key, window)] += amount
                        granted.append(r)
                if not commit:
                    raise Abort
        except Abort:
            return ()  # rolled back: nothing to release
        self.model = scratch
        return tuple(granted)

    @rule(granted=consumes(reserved))
    def release(self, granted: tuple[Reservation, ...]) -> None:
        if not granted:
            return
        with self.store.transaction(durable=False) as tx:
            for r in granted:
                tx.release(r)
        for r in granted:
            self.model[(r.key, r.window)] -= r.amount

    @invariant()
    def counters_match_the_model_and_stay_within_limits(self) -> None:
        for key, window, limit in KEYS:
            assert self.store.counter(key, window) == self.model[(key, window)]
            assert Decimal(0) <= self.model[(key, window)] <= limit


@pytest.mark.requirement("G10")
@pytest.mark.parametrize("kind", BACKENDS)
def test_reserve_and_release_follow_their_model(kind: str) -> None:
    with Fresh(kind) as fresh:
        run_state_machine_as_test(lambda: Limiter(fresh), settings=_settings(kind, 60))


# -- budgets and rates through the gate ----------------------------------------------------

SPEND_KEY = f"budget|ledger.spend|{OPS}"
RATE_KEY = f"rate|ledger.rate-shared|{OPS}"


class Spending(RuleBasedStateMachine):
    def __init__(self, fresh: Fresh) -> None:
        super().__init__()
        self.fresh = fresh
        self.store = fresh.new()
        self.clock = ManualClock(NOW)
        self.gate = Gate(LEDGER_BUNDLE, store=self.store, clock=self.clock)
        self.effects: list[tuple[str, float, int]] = []

        @self.gate.tool(effect="irreversible", atomic=True)  # declined: nothing happened
        def spend(memo: str, amount: int) -> str:
            if memo == "fail":
                raise RuntimeError("declined")
            self.effects.append(("spend", self.clock.now(), amount))
            return "spent"

        @self.gate.tool
        def ping(n: int) -> int:
            if n < 0:
                raise RuntimeError("down")
            self.effects.append(("ping", self.clock.now(), 1))
            return n

        self.session = Session("model")
        self.spent: Counter[int] = Counter()
        self.pinged: Counter[int] = Counter()

    def teardown(self) -> None:
        try:
            assert verify(self.gate.store.records()).ok
        finally:
            self.fresh.done(self.store)

    def window(self, period: int) -> int:
        return int(self.clock.now()) // period * period

    @rule(amount=st.sampled_from([0, 1, 100, 250, 400, 999, 1000, 1001]), fail=st.booleans())
    def spend(self, amount: int, fail: bool) -> None:
        memo = "fail" if fail else "ok"
        result = self.gate.call(OPS, "spend", {"amount": amount, "memo": memo}, self.session)
        day = self.window(DAY)
        if self.spent[day] + amount > 1000:
            assert isinstance(result, Refusal), result
            assert result.code == "limit_exceeded"
        elif fail:
            assert isinstance(result, ToolFailure), result
        else:
            assert result == "spent"
            self.spent[day] += amount

    @rule(amount=st.sampled_from([-1, -1000]))
    def spend_negative(self, amount: int) -> None:
        result = self.gate.call(OPS, "spend", {"amount": amount, "memo": "x"}, self.session)
        assert isinstance(result, Refusal), result
        assert result.code == "invalid_arguments"

    @rule(fail=st.booleans())
    def ping(self, fail: bool) -> None:
        result = self.gate.call(OPS, "ping", {"n": -1 if fail else 1}, self.session)
        minute = self.window(MINUTE)
        if self.pinged[minute] >= 3:
            assert isinstance(result, Refusal), result
            assert result.code == "limit_exceeded"
        elif fail:
            assert isinstance(result, ToolFailure), result
            self.pinged[minute] += 1  # a rate counts attempts: a failure keeps its slot
        else:
            assert result == 1
            self.pinged[minute] += 1

    @rule(seconds=st.sampled_from([1, 59, 3600, 43200, 86400]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def counters_match_what_ran(self) -> None:
        store = self.gate.store
        day, minute = self.window(DAY), self.window(MINUTE)
        assert store.counter(SPEND_KEY, day) == self.spent[day] <= 1000
        assert store.counter(RATE_KEY, minute) == self.pinged[minute] <= 3
        ran_today = sum(
            a for t, when, a in self.effects if t == "spend" and int(when) // DAY * DAY == day
        )
        assert ran_today == self.spent[day]


@pytest.mark.requirement("G10")
@pytest.mark.parametrize("kind", BACKENDS)
def test_budgets_and_rates_through_the_gate_follow_their_model(kind: str) -> None:
    with Fresh(kind) as fresh:
        run_state_machine_as_test(lambda: Spending(fresh), settings=_settings(kind, 40))
