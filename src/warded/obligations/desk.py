"""The approval desk: where people see pending approvals and decide them.

Approving never runs anything by itself: the approved call runs when the
agent retries exactly that call (or the integrator calls `Gate.run_approved`),
which consumes the approval in the transaction that records the execution.
Every change of an approval's state goes through `transition`, which puts it
on the audit chain in the same transaction, so `warded audit verify` can
recompute the approvals table from the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from warded.audit.record import AuditEntry, new_id
from warded.clock import Clock
from warded.errors import ApprovalError, ApprovalProblem
from warded.model import Principal
from warded.obligations.approvals import OPEN, Approval, Approver, Status
from warded.policy.bundle import PolicyBundle
from warded.store import Store, Tx

APPROVER_TYPE = "Approver"
APPROVER_GROUP_TYPE = "ApproverGroup"


@dataclass(frozen=True, slots=True)
class ApprovalDesk:
    """Approvals in a store, decided by approvers, on a clock."""

    store: Store
    clock: Clock

    def approvals(self, status: Status | None = None) -> list[Approval]:
        """Approvals, oldest first; open ones past their expiry show as expired."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            found = tx.approvals(None)
        shown = [_as_of(a, now) for a in found]
        return [a for a in shown if status is None or a.status == status]

    def get(self, approval_id: str) -> Approval:
        with self.store.transaction() as tx:
            found = tx.approval(approval_id)
        if found is None:
            raise ApprovalError("not_found", f"no approval {approval_id!r}")
        return _as_of(found, self.clock.now())

    def approve(self, approval_id: str, approver: Approver, reason: str | None = None) -> Approval:
        """Approve a pending approval; raises ApprovalError if this approver may not."""
        return self._decide(approval_id, approver, "approved", reason)

    def deny(self, approval_id: str, approver: Approver, reason: str | None = None) -> Approval:
        """Deny a pending approval; the call it was for will not run."""
        return self._decide(approval_id, approver, "denied", reason)

    def _decide(
        self, approval_id: str, approver: Approver, status: Status, reason: str | None
    ) -> Approval:
        now = self.clock.now()
        problem: tuple[ApprovalProblem, str] | None = None
        with self.store.transaction() as tx:
            found = tx.approval(approval_id)
            if found is None:
                raise ApprovalError("not_found", f"no approval {approval_id!r}")
            if found.status == "pending" and now >= found.expires:
                transition(tx, found.with_status("expired"), now)
                problem = ("expired", f"approval {approval_id} expired")
            else:
                problem = _check(found, approver)
            if problem is not None:
                event = approval_event(
                    "approval.refused", found, now, by=approver.id, reason=problem[0]
                )
                tx.append([event])
            else:
                decided = found.with_status(
                    status, decided_by=approver.id, decided_at=now, reason=reason
                )
                transition(tx, decided, now, by=approver.id, reason=reason)
        if problem is not None:
            raise ApprovalError(*problem)
        return decided

    def void(self, keep_version: str | None, now: float, tx: Tx) -> list[Approval]:
        """Void every open approval not bound to `keep_version` (every one if None)."""
        voided = []
        for status in OPEN:
            for a in tx.approvals(status):
                if a.bundle_version != keep_version:
                    gone = a.with_status("voided", decided_at=now, reason="policy bundle changed")
                    transition(tx, gone, now, reason="policy bundle changed")
                    voided.append(gone)
        return voided


EVENTS: dict[Status, str] = {
    "pending": "approval.created",
    "approved": "approval.approved",
    "denied": "approval.denied",
    "consumed": "approval.consumed",
    "expired": "approval.expired",
    "voided": "approval.voided",
}
RETURNED = "approval.returned"


def transition(
    tx: Tx,
    approval: Approval,
    now: float,
    *,
    event: str | None = None,
    by: str | None = None,
    reason: str | None = None,
) -> None:
    """Store `approval` in its new state and put the transition on the chain, in one
    transaction: the approvals table is never ahead of (or behind) the evidence."""
    tx.put_approval(approval)
    name = event or EVENTS[approval.status]
    tx.append([approval_event(name, approval, now, by=by, reason=reason)])


def approved_for(tx: Tx, digest: str, now: float) -> Approval | None:
    """The approved, unexpired approval for this call digest; an expired one is marked so."""
    approved = tx.approval_for(digest, "approved")
    if approved is None:
        return None
    if not approved.usable(now):
        transition(tx, approved.with_status("expired"), now)
        return None
    return approved


def pending_for(tx: Tx, draft: Approval, now: float) -> Approval:
    """The open request for `draft`'s digest, or `draft` stored as the new one."""
    pending = tx.approval_for(draft.digest, "pending")
    if pending is not None and now < pending.expires:
        return pending
    if pending is not None:
        transition(tx, pending.with_status("expired"), now)
    transition(tx, draft, now)
    return draft


def give_back(tx: Tx, approval_id: str, now: float, reason: str) -> None:
    """Restore an approval consumed by a call that then never ran."""
    consumed = tx.approval(approval_id)
    if consumed is not None and consumed.status == "consumed":
        transition(tx, consumed.with_status("approved"), now, event=RETURNED, reason=reason)


def _check(found: Approval, approver: Approver) -> tuple[ApprovalProblem, str] | None:
    if found.status != "pending":
        return "not_pending", f"approval {found.id} is {found.status}"
    try:
        agent_id = Principal.parse(found.principal).id
    except ValueError:
        agent_id = found.principal
    if approver.id in (found.principal, agent_id):
        return "self_approval", "an agent can never approve its own calls"
    missing = set(found.group.split(",")) - approver.groups
    if missing:
        return "not_in_group", f"approver is not in {', '.join(sorted(missing))}"
    return None


def _as_of(a: Approval, now: float) -> Approval:
    return a.with_status("expired") if a.status in OPEN and now >= a.expires else a


def approval_event(
    event: str, a: Approval, now: float, *, by: str | None = None, reason: str | None = None
) -> AuditEntry:
    return AuditEntry(
        kind="event",
        call=a.call,
        time=now,
        principal=a.principal,
        tool=a.tool,
        args_digest=a.args_digest,
        bundle_version=a.bundle_version,
        detail={
            "event": event,
            "approval": a.id,
            "status": a.status,
            "digest": a.digest,
            "group": a.group,
            "by": by,
            "reason": reason,
        },
        id=new_id(),
    )


def approver_from_bundle(bundle: PolicyBundle, approver_id: str) -> Approver:
    """An approver as the bundle's entities declare it: `Approver::"id"` in approver groups."""
    uid = (APPROVER_TYPE, approver_id)
    ancestors = bundle.ancestors.get(uid)
    if ancestors is None:
        raise ApprovalError("not_an_approver", f"{approver_id!r} is not an Approver in the bundle")
    groups = frozenset(i for t, i in ancestors if t == APPROVER_GROUP_TYPE)
    return Approver(approver_id, groups)
