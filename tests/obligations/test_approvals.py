"""G8 approvals bound and single-use: adversarial tests of the approval lifecycle.

An approval covers one exact call (principal, tool, frozen arguments,
resource, session, bundle version), is decided by a person in the right
group who is not the agent, expires on the injected clock, is voided by a
bundle change, and is consumed exactly once in the transaction that records
the execution. Every step is in the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from warded import (
    ApprovalError,
    Approver,
    AuditEntry,
    AuditRecord,
    BundleFiles,
    Gate,
    ManualClock,
    MemoryStore,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    Store,
    StoreError,
    verify,
)
from warded.obligations.approvals import Approval
from warded.obligations.desk import approver_from_bundle
from warded.policy.source import DirectorySource
from warded.store import Tx

ROOT = Path(__file__).resolve().parents[2]
BANKING = ROOT / "examples" / "banking" / "policies"
LEDGER = Path(__file__).resolve().parent / "bundles" / "ledger"
KNOWN = "GB33BUKB20201555555555"
OTHER_KNOWN = "DE89370400440532013000"
PAY = {"recipient": KNOWN, "amount": 1200, "subject": "invoice 7"}
ALICE = Approver("alice", frozenset({"finance"}))
BOB = Approver("bob", frozenset({"finance"}))
TTL = 600.0


# -- fixtures and helpers -------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def billing() -> Principal:
    return Principal.agent("billing-bot")


@pytest.fixture
def session() -> Session:
    return Session("s-1")


@pytest.fixture
def sent() -> list[dict[str, Any]]:
    """The arguments of every payment the tool actually sent, in order."""
    return []


def banking_gate(
    bundle: PolicyBundle | Path, store: Store, clock: ManualClock, sent: list[dict[str, Any]]
) -> Gate:
    loaded = bundle if isinstance(bundle, PolicyBundle) else PolicyBundle.from_directory(bundle)
    gate = Gate(loaded, store=store, clock=clock, approval_ttl=TTL)

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> dict[str, str]:
        sent.append({"recipient": recipient, "amount": amount, "subject": subject})
        return {"status": "sent"}

    return gate


@pytest.fixture
def gate(store: Store, clock: ManualClock, sent: list[dict[str, Any]]) -> Gate:
    return banking_gate(BANKING, store, clock, sent)


def ledger_gate(store: Store, clock: ManualClock, sent: list[dict[str, Any]], **kw: Any) -> Gate:
    gate = Gate.from_directory(LEDGER, store=store, clock=clock, **kw)

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def transfer(recipient: str, amount: int, memo: str) -> str:
        sent.append({"recipient": recipient, "amount": amount, "memo": memo})
        return "sent"

    return gate


def banking_variant(*, extra_agent: str | None = None, comment: str = "") -> PolicyBundle:
    """The banking bundle with another billing agent and/or a changed policy file."""
    files = DirectorySource(BANKING).read()
    entities = files.entities
    if extra_agent is not None:
        assert entities is not None
        listed = json.loads(entities[1])
        listed.append(
            {
                "uid": {"type": "Agent", "id": extra_agent},
                "attrs": {"role": "payments assistant"},
                "parents": [{"type": "Team", "id": "billing"}],
            }
        )
        entities = (entities[0], json.dumps(listed))
    policies = tuple(
        (name, text + comment if name == "payments.cedar" else text)
        for name, text in files.policies
    )
    return PolicyBundle.load(BundleFiles(policies, files.schema, entities))


def held(result: object) -> str:
    """The approval id of an `approval_required` refusal."""
    assert isinstance(result, Refusal), result
    assert result.code == "approval_required"
    assert result.approval_id
    return result.approval_id


def refused(result: object, code: str) -> Refusal:
    assert isinstance(result, Refusal), result
    assert result.code == code
    return result


def status(gate: Gate, approval_id: str) -> str:
    return gate.approvals.get(approval_id).status


def bodies(gate: Gate) -> list[dict[str, Any]]:
    return [r.body for r in gate.store.records()]


def events(gate: Gate, name: str) -> list[dict[str, Any]]:
    return [b for b in bodies(gate) if b["kind"] == "event" and b["detail"]["event"] == name]


def approve_call(gate: Gate, principal: Principal, args: dict[str, Any], s: Session) -> str:
    approval_id = held(gate.call(principal, "send_money", args, s))
    gate.approvals.approve(approval_id, ALICE)
    return approval_id


# -- held, approved, consumed ---------------------------------------------------


@pytest.mark.requirement("G8")
def test_a_call_needing_approval_is_held_and_its_resend_while_pending_names_the_same_approval(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    first = held(gate.call(billing, "send_money", PAY, session))
    again = held(gate.call(billing, "send_money", dict(PAY), session))

    assert again == first
    assert [a.id for a in gate.approvals.approvals()] == [first]
    pending = gate.approvals.get(first)
    assert (pending.status, pending.group, pending.tool) == ("pending", "finance", "send_money")
    assert json.loads(pending.args) == PAY
    assert sent == []


@pytest.mark.requirement("G8")
@pytest.mark.requirement("G9")
def test_the_approved_retry_runs_once_with_the_approved_arguments_and_a_replay_needs_a_new_one(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = approve_call(gate, billing, PAY, session)

    assert gate.call(billing, "send_money", dict(PAY), session) == {"status": "sent"}
    assert sent == [PAY]
    assert status(gate, approval_id) == "consumed"

    replay = held(gate.call(billing, "send_money", dict(PAY), session))
    assert replay != approval_id
    assert status(gate, replay) == "pending"
    assert sent == [PAY]


@pytest.mark.requirement("G8")
@pytest.mark.requirement("G9")
def test_run_approved_runs_the_approved_call_once_and_a_second_run_is_refused(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = approve_call(gate, billing, PAY, session)

    assert gate.run_approved(approval_id, session) == {"status": "sent"}
    with pytest.raises(ApprovalError) as second:
        gate.run_approved(approval_id, session)

    assert second.value.problem == "not_pending"
    assert sent == [PAY]
    assert status(gate, approval_id) == "consumed"
    # the agent's identical retry after run_approved is a new request too
    assert held(gate.call(billing, "send_money", PAY, session)) != approval_id
    assert sent == [PAY]


@pytest.mark.requirement("G8")
def test_run_approved_from_another_session_is_refused_and_leaves_the_approval_usable(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = approve_call(gate, billing, PAY, session)

    with pytest.raises(ApprovalError) as elsewhere:
        gate.run_approved(approval_id, Session("s-2"))

    assert elsewhere.value.problem == "not_found"
    assert sent == []
    assert status(gate, approval_id) == "approved"
    assert gate.run_approved(approval_id, session) == {"status": "sent"}


@pytest.mark.requirement("G8")
def test_run_approved_refuses_pending_denied_and_unknown_approvals(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    pending = held(gate.call(billing, "send_money", PAY, session))
    denied = held(gate.call(billing, "send_money", {**PAY, "amount": 1300}, session))
    gate.approvals.deny(denied, ALICE)

    problems = []
    for approval_id in (pending, denied, "no-such-approval"):
        with pytest.raises(ApprovalError) as err:
            gate.run_approved(approval_id, session)
        problems.append(err.value.problem)

    assert problems == ["not_pending", "not_pending", "not_found"]
    assert sent == []


# -- bound to one call ----------------------------------------------------------

VARIANTS = {
    "amount plus one": ({**PAY, "amount": 1201}, "s-1", "billing-bot"),
    "another payee": ({**PAY, "recipient": OTHER_KNOWN}, "s-1", "billing-bot"),
    "another subject": ({**PAY, "subject": "invoice 8"}, "s-1", "billing-bot"),
    "another session": (PAY, "s-2", "billing-bot"),
    "another principal": (PAY, "s-1", "billing-bot-2"),
}


@pytest.mark.requirement("G8")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_an_approval_for_one_call_cannot_run_any_other_call(
    variant: str, store: Store, clock: ManualClock, sent: list[Any]
) -> None:
    gate = banking_gate(banking_variant(extra_agent="billing-bot-2"), store, clock, sent)
    billing, s1 = Principal.agent("billing-bot"), Session("s-1")
    approval_id = approve_call(gate, billing, PAY, s1)
    args, session_id, agent = VARIANTS[variant]

    other = held(gate.call(Principal.agent(agent), "send_money", args, Session(session_id)))

    assert other != approval_id
    assert status(gate, other) == "pending"
    assert status(gate, approval_id) == "approved"
    assert sent == []
    assert gate.call(billing, "send_money", PAY, s1) == {"status": "sent"}
    assert sent == [PAY]


@pytest.mark.requirement("G8")
def test_a_number_written_differently_is_the_same_call_for_its_approval(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = approve_call(gate, billing, PAY, session)

    # 1200.0 and 1200 freeze to the same canonical arguments
    assert gate.call(billing, "send_money", {**PAY, "amount": 1200.0}, session) == {
        "status": "sent"
    }
    assert status(gate, approval_id) == "consumed"
    assert len(sent) == 1


# -- a bundle change voids --------------------------------------------------------


@pytest.mark.requirement("G8")
def test_reload_to_another_bundle_version_voids_pending_and_unconsumed_approvals(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    pending = held(gate.call(billing, "send_money", PAY, session))
    approved = approve_call(gate, billing, {**PAY, "amount": 1300}, session)
    consumed = approve_call(gate, billing, {**PAY, "amount": 1400}, session)
    assert gate.call(billing, "send_money", {**PAY, "amount": 1400}, session) == {"status": "sent"}
    denied = held(gate.call(billing, "send_money", {**PAY, "amount": 1500}, session))
    gate.approvals.deny(denied, ALICE)
    old = gate.version

    new = gate.reload(banking_variant(comment="\n// reviewed\n"))

    assert new != old
    assert [status(gate, a) for a in (pending, approved, consumed, denied)] == [
        "voided",
        "voided",
        "consumed",
        "denied",
    ]
    assert {e["detail"]["approval"] for e in events(gate, "approval.voided")} == {
        pending,
        approved,
    }
    with pytest.raises(ApprovalError) as late:
        gate.approvals.approve(pending, ALICE)
    assert late.value.problem == "not_pending"
    with pytest.raises(ApprovalError):
        gate.run_approved(approved, session)
    retry = held(gate.call(billing, "send_money", {**PAY, "amount": 1300}, session))
    assert retry not in (pending, approved)
    assert gate.approvals.get(retry).bundle_version == new
    assert len(sent) == 1


@pytest.mark.requirement("G8")
def test_reloading_the_same_bundle_keeps_open_approvals(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = approve_call(gate, billing, PAY, session)

    gate.reload(gate.bundle)

    assert status(gate, approval_id) == "approved"
    assert gate.call(billing, "send_money", PAY, session) == {"status": "sent"}
    assert events(gate, "approval.voided") == []


@pytest.mark.requirement("G8")
def test_going_back_to_the_old_bundle_does_not_revive_voided_approvals(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    original = gate.bundle
    approval_id = approve_call(gate, billing, PAY, session)

    gate.reload(banking_variant(comment="\n// reviewed\n"))
    gate.reload(original)

    assert gate.version == original.version
    assert status(gate, approval_id) == "voided"
    assert held(gate.call(billing, "send_money", PAY, session)) != approval_id
    assert sent == []


# -- time only ever expires ---------------------------------------------------------


@pytest.mark.requirement("G8")
def test_an_approval_can_be_decided_until_the_instant_it_expires(
    gate: Gate, clock: ManualClock, billing: Principal, session: Session
) -> None:
    early = held(gate.call(billing, "send_money", PAY, session))
    late = held(gate.call(billing, "send_money", {**PAY, "amount": 1300}, session))
    clock.advance(TTL - 0.001)
    assert gate.approvals.approve(early, ALICE).status == "approved"

    clock.advance(0.001)
    with pytest.raises(ApprovalError) as expired:
        gate.approvals.approve(late, ALICE)

    assert expired.value.problem == "expired"
    assert status(gate, late) == "expired"
    assert [e["detail"]["approval"] for e in events(gate, "approval.expired")] == [late]


@pytest.mark.requirement("G8")
def test_an_approved_approval_that_expires_unused_cannot_be_consumed(
    gate: Gate, clock: ManualClock, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = approve_call(gate, billing, PAY, session)
    clock.advance(TTL)

    assert status(gate, approval_id) == "expired"
    with pytest.raises(ApprovalError):
        gate.run_approved(approval_id, session)
    retry = held(gate.call(billing, "send_money", PAY, session))

    assert retry != approval_id
    assert status(gate, approval_id) == "expired"
    assert sent == []


@pytest.mark.requirement("G8")
def test_time_alone_never_approves(
    gate: Gate, clock: ManualClock, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = held(gate.call(billing, "send_money", PAY, session))
    seen = set()
    for _ in range(12):
        clock.advance(TTL / 4)
        seen.add(status(gate, approval_id))
        assert gate.approvals.approvals("approved") == []

    assert seen == {"pending", "expired"}
    retry = held(gate.call(billing, "send_money", PAY, session))
    assert retry != approval_id
    assert sent == []
    assert all(b["decision"] != "allow" for b in bodies(gate))


@pytest.mark.requirement("G8")
def test_an_expired_pending_approval_is_replaced_by_a_new_request_on_retry(
    gate: Gate, clock: ManualClock, billing: Principal, session: Session, sent: list[Any]
) -> None:
    first = held(gate.call(billing, "send_money", PAY, session))
    clock.advance(TTL)

    second = held(gate.call(billing, "send_money", PAY, session))

    assert second != first
    assert gate.approvals.get(second).expires == clock.now() + TTL
    gate.approvals.approve(second, ALICE)
    assert gate.call(billing, "send_money", PAY, session) == {"status": "sent"}
    assert [a.status for a in gate.approvals.approvals()] == ["expired", "consumed"]


@pytest.mark.requirement("G8")
def test_an_expiry_the_gate_discovers_is_in_the_audit_log(
    clock: ManualClock, billing: Principal, session: Session, sent: list[Any]
) -> None:
    """An approved approval that lapses unused, and a pending one replaced after expiry,
    leave an `approval.expired` event, like an expiry the desk discovers does."""
    gate = banking_gate(BANKING, MemoryStore(), clock, sent)
    approved = approve_call(gate, billing, PAY, session)
    pending = held(gate.call(billing, "send_money", {**PAY, "amount": 1300}, session))
    clock.advance(TTL)

    held(gate.call(billing, "send_money", PAY, session))
    held(gate.call(billing, "send_money", {**PAY, "amount": 1300}, session))

    expired = {e["detail"]["approval"] for e in events(gate, "approval.expired")}
    assert expired == {approved, pending}


# -- who may decide -------------------------------------------------------------------


@pytest.mark.requirement("G8")
@pytest.mark.parametrize("approver_id", ["billing-bot", 'Agent::"billing-bot"'])
def test_an_agent_can_never_approve_its_own_calls(
    approver_id: str, gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = held(gate.call(billing, "send_money", PAY, session))

    with pytest.raises(ApprovalError) as own:
        gate.approvals.approve(approval_id, Approver(approver_id, frozenset({"finance"})))

    assert own.value.problem == "self_approval"
    assert status(gate, approval_id) == "pending"
    assert events(gate, "approval.approved") == []
    assert held(gate.call(billing, "send_money", PAY, session)) == approval_id
    assert sent == []


@pytest.mark.requirement("G8")
@pytest.mark.parametrize("agent", ["ren\u00e9-bot", 'quote"bot', "back\\slash-bot"])
def test_an_agent_whose_id_json_escapes_can_never_approve_its_own_calls(
    agent: str, clock: ManualClock, sent: list[Any]
) -> None:
    gate = ledger_gate(MemoryStore(), clock, sent)
    principal, s = Principal.agent(agent), Session("s")
    args = {"recipient": KNOWN, "amount": 10, "memo": "m"}
    approval_id = held(gate.call(principal, "transfer", args, s))
    myself = approver_from_bundle(gate.bundle, agent)
    assert (myself.id, myself.groups) == (agent, {"finance"})

    with pytest.raises(ApprovalError) as own:
        gate.approvals.approve(approval_id, myself)

    assert own.value.problem == "self_approval"
    assert sent == []


@pytest.mark.requirement("G8")
@pytest.mark.parametrize(
    "approver",
    [
        Approver("mallory", frozenset({"audit"})),
        Approver("bob", frozenset()),
        Approver("carol", frozenset({"Finance"})),
        Approver("dave", frozenset({"finance-ops"})),
    ],
    ids=["other-group", "no-group", "case-differs", "prefix"],
)
def test_an_approver_outside_the_group_is_refused(
    approver: Approver, gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = held(gate.call(billing, "send_money", PAY, session))

    for decide in (gate.approvals.approve, gate.approvals.deny):
        with pytest.raises(ApprovalError) as outsider:
            decide(approval_id, approver)
        assert outsider.value.problem == "not_in_group"

    assert status(gate, approval_id) == "pending"
    assert held(gate.call(billing, "send_money", PAY, session)) == approval_id
    assert sent == []


@pytest.mark.requirement("G8")
def test_approvers_are_read_from_the_bundle_entities(
    store: Store, clock: ManualClock, sent: list[Any]
) -> None:
    gate = ledger_gate(store, clock, sent)
    alice = approver_from_bundle(gate.bundle, "alice")
    mallory = approver_from_bundle(gate.bundle, "mallory")
    with pytest.raises(ApprovalError) as stranger:
        approver_from_bundle(gate.bundle, "eve")
    ops, s = Principal.agent("ops-bot"), Session("s")
    args = {"recipient": KNOWN, "amount": 10, "memo": "m"}
    approval_id = held(gate.call(ops, "transfer", args, s))

    with pytest.raises(ApprovalError) as wrong_group:
        gate.approvals.approve(approval_id, mallory)
    gate.approvals.approve(approval_id, alice)

    assert stranger.value.problem == "not_an_approver"
    assert (alice.groups, mallory.groups) == ({"finance"}, {"audit"})
    assert wrong_group.value.problem == "not_in_group"
    assert gate.call(ops, "transfer", args, s) == "sent"
    assert sent == [args]


@pytest.mark.requirement("G8")
def test_an_approval_is_decided_once(gate: Gate, billing: Principal, session: Session) -> None:
    approval_id = held(gate.call(billing, "send_money", PAY, session))
    gate.approvals.approve(approval_id, ALICE)

    problems = []
    for decide, who in (
        (gate.approvals.approve, ALICE),
        (gate.approvals.approve, BOB),
        (gate.approvals.deny, BOB),
    ):
        with pytest.raises(ApprovalError) as again:
            decide(approval_id, who)
        problems.append(again.value.problem)

    assert problems == ["not_pending"] * 3
    assert gate.approvals.get(approval_id).decided_by == "alice"


@pytest.mark.requirement("G8")
def test_a_denied_call_never_runs_and_its_retry_opens_a_new_request(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    approval_id = held(gate.call(billing, "send_money", PAY, session))

    denied = gate.approvals.deny(approval_id, ALICE, reason="not this month")
    retry = held(gate.call(billing, "send_money", PAY, session))

    assert (denied.status, denied.decided_by, denied.reason) == (
        "denied",
        "alice",
        "not this month",
    )
    assert retry != approval_id
    with pytest.raises(ApprovalError) as late:
        gate.approvals.approve(approval_id, BOB)
    assert late.value.problem == "not_pending"
    with pytest.raises(ApprovalError):
        gate.run_approved(approval_id, session)
    assert sent == []
    assert status(gate, approval_id) == "denied"


# -- the audit trail --------------------------------------------------------------------


@pytest.mark.requirement("G8")
def test_every_approval_step_is_in_the_audit_log(
    gate: Gate, clock: ManualClock, billing: Principal, session: Session
) -> None:
    ran = approve_call(gate, billing, PAY, session)
    gate.call(billing, "send_money", PAY, session)
    denied = held(gate.call(billing, "send_money", {**PAY, "amount": 1300}, session))
    gate.approvals.deny(denied, BOB)
    lapsed = held(gate.call(billing, "send_money", {**PAY, "amount": 1400}, session))
    voided = held(gate.call(billing, "send_money", {**PAY, "amount": 1500}, session))
    clock.advance(TTL / 2)
    late = held(gate.call(billing, "send_money", {**PAY, "amount": 1600}, session))
    clock.advance(TTL / 2)
    with pytest.raises(ApprovalError):
        gate.approvals.approve(lapsed, ALICE)
    gate.reload(banking_variant(comment="\n// reviewed\n"))

    records = list(gate.store.records())
    assert verify(records).ok
    steps = [
        (b["detail"]["event"], b["detail"]["approval"], b["detail"]["by"])
        for b in (r.body for r in records)
        if b["kind"] == "event" and b["detail"]["event"].startswith("approval.")
    ]
    # every transition of every approval is on the chain (G12: verify recomputes the
    # table from them); an open approval is voided by a bundle change even if its
    # time ran out unnoticed
    assert steps == [
        ("approval.created", ran, None),
        ("approval.approved", ran, "alice"),
        ("approval.consumed", ran, None),
        ("approval.created", denied, None),
        ("approval.denied", denied, "bob"),
        ("approval.created", lapsed, None),
        ("approval.created", voided, None),
        ("approval.created", late, None),
        ("approval.expired", lapsed, None),
        ("approval.refused", lapsed, "alice"),
        ("approval.voided", voided, None),
        ("approval.voided", late, None),
    ]
    decisions = [b for b in bodies(gate) if b["kind"] == "decision"]
    holds = {b["detail"]["approval"] for b in decisions if b["code"] == "approval_required"}
    assert holds == {ran, denied, lapsed, voided, late}
    (allowed,) = [b for b in decisions if b["decision"] == "allow"]
    assert allowed["detail"] == {"approval": ran, "approved_by": "alice"}
    assert allowed["args"] == PAY


# -- consumption is atomic with the decision record -------------------------------------


class FaultyStore:
    """Delegates to a real store; when armed, a transaction's `append` of an allowing
    decision raises, after whatever the transaction did before it."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.armed = False
        self.consumed_before_failing: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[Tx]:
        with self.inner.transaction(durable=durable) as tx:
            yield FaultyTx(tx, self)

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._transaction(durable)


class FaultyTx:
    def __init__(self, tx: Tx, owner: FaultyStore) -> None:
        self.tx = tx
        self.owner = owner
        self.consumed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tx, name)

    def put_approval(self, approval: Approval) -> None:
        if approval.status == "consumed":
            self.consumed.append(approval.id)
        self.tx.put_approval(approval)

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        if self.owner.armed and any(e.decision == "allow" for e in entries):
            self.owner.consumed_before_failing.extend(self.consumed)
            raise StoreError("disk full")
        return self.tx.append(entries)


@pytest.mark.requirement("G8")
@pytest.mark.requirement("G13")
def test_an_approval_is_consumed_only_if_the_decision_record_commits(
    store: Store, clock: ManualClock, billing: Principal, session: Session, sent: list[Any]
) -> None:
    faulty = FaultyStore(store)
    gate = banking_gate(BANKING, faulty, clock, sent)  # type: ignore[arg-type]
    approval_id = approve_call(gate, billing, PAY, session)
    faulty.armed = True

    failed = gate.call(billing, "send_money", PAY, session)

    refused(failed, "unavailable")
    assert faulty.consumed_before_failing == [approval_id]
    assert status(gate, approval_id) == "approved"
    assert sent == []
    assert all(b["decision"] != "allow" for b in bodies(gate))
    faulty.armed = False
    assert gate.call(billing, "send_money", PAY, session) == {"status": "sent"}
    assert status(gate, approval_id) == "consumed"
    assert sent == [PAY]


@pytest.mark.requirement("G8")
@pytest.mark.requirement("G10")
def test_a_call_refused_for_its_budget_keeps_its_approval_for_the_next_window(
    store: Store, clock: ManualClock, sent: list[Any]
) -> None:
    gate = ledger_gate(store, clock, sent, approval_ttl=2 * 86400)
    ops, s = Principal.agent("ops-bot"), Session("s")
    big = {"recipient": KNOWN, "amount": 4000, "memo": "a"}
    more = {"recipient": KNOWN, "amount": 1500, "memo": "b"}
    gate.approvals.approve(held(gate.call(ops, "transfer", big, s)), ALICE)
    assert gate.call(ops, "transfer", big, s) == "sent"
    approval_id = held(gate.call(ops, "transfer", more, s))
    gate.approvals.approve(approval_id, ALICE)

    over = refused(gate.call(ops, "transfer", more, s), "limit_exceeded")

    assert status(gate, approval_id) == "approved"
    record = next(b for b in bodies(gate) if b["id"] == over.ref)
    assert (record["decision"], record["detail"]["approval"]) == ("deny", approval_id)
    clock.advance(86400)
    assert gate.call(ops, "transfer", more, s) == "sent"
    assert status(gate, approval_id) == "consumed"
    assert sent == [big, more]


@pytest.mark.requirement("G8")
@pytest.mark.requirement("G9")
def test_a_reused_call_id_does_not_consume_the_approval(
    gate: Gate, billing: Principal, session: Session, sent: list[Any]
) -> None:
    small = {**PAY, "amount": 5}
    assert gate.call(billing, "send_money", small, session, call_id="tc_1") == {"status": "sent"}
    approval_id = approve_call(gate, billing, PAY, session)

    reused = refused(
        gate.call(billing, "send_money", PAY, session, call_id="tc_1"), "not_permitted"
    )

    assert status(gate, approval_id) == "approved"
    record = next(b for b in bodies(gate) if b["id"] == reused.ref)
    assert record["detail"]["reused_call_id"] is True
    assert gate.call(billing, "send_money", PAY, session, call_id="tc_2") == {"status": "sent"}
    assert sent == [small, PAY]


class ReloadLostStore(FaultyStore):
    """When armed, the transaction recording a reload fails (voiding nothing)."""

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[Tx]:
        with self.inner.transaction(durable=durable) as tx:
            yield ReloadLostTx(tx, self)


class ReloadLostTx(FaultyTx):
    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        if self.owner.armed and any(e.detail.get("event") == "reload" for e in entries):
            raise StoreError("disk full")
        return self.tx.append(entries)


@pytest.mark.requirement("G8")
def test_going_back_to_the_old_bundle_after_a_reload_the_store_missed_revives_no_approval(
    store: Store, clock: ManualClock, billing: Principal, session: Session, sent: list[Any]
) -> None:
    lost = ReloadLostStore(store)
    gate = banking_gate(BANKING, lost, clock, sent)  # type: ignore[arg-type]
    original = gate.bundle
    approval_id = approve_call(gate, billing, PAY, session)

    lost.armed = True
    gate.reload(banking_variant(comment="\n// reviewed\n"))  # in force, voiding nothing
    lost.armed = False
    gate.reload(original)

    assert gate.version == original.version
    assert status(gate, approval_id) == "voided"
    assert held(gate.call(billing, "send_money", PAY, session)) != approval_id
    assert sent == []
