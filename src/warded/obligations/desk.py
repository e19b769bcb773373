"""The approval desk: where people see pending approvals and decide them.

Approving never runs anything by itself: the approved call runs when the
agent retries exactly that call (or the integrator calls `Gate.run_approved`),
which consumes the approval in the transaction that records the execution.
Every decision on the desk is an audit event.
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
        with self.store.transaction() as tx:
            found = tx.approval(approval_id)
            if found is None:
                raise ApprovalError("not_found", f"no approval {approval_id!r}")
            if found.status == "pending" and now >= found.expires:
                _expire(tx, found, now)
                problem: tuple[ApprovalProblem, str] | None = (
                    "expired",
                    f"approval {approval_id} expired",
                )
            else:
                problem = _check(found, approver)
                if problem is not None:
                    detail_by = approver.id
                    tx.append(
                        [
                            approval_event(
                                "approval.refused", found, now, by=detail_by, reason=problem[0]
                            )
                        ]
                    )
            if problem is None:
                decided = found.with_status(
                    status, decided_by=approver.id, decided_at=now, reason=reason
                )
                tx.put_approval(decided)
                tx.append(
                    [
                        approval_event(
                            f"approval.{status}", decided, now, by=approver.id, reason=reason
                        )
                    ]
                )
        if problem is not None:
            raise ApprovalError(*problem)
        return decided

    def void(self, keep_version: str, now: float, tx: Tx) -> list[Approval]:
        """Void every open approval not bound to `keep_version` (a reload changed the bundle)."""
        voided = []
        for status in OPEN:
            for a in tx.approvals(status):
                if a.bundle_version != keep_version:
                    gone = a.with_status("voided", decided_at=now, reason="policy bundle changed")
                    tx.put_approval(gone)
                    tx.append([approval_event("approval.voided", gone, now)])
                    voided.append(gone)
        return voided


def approved_for(tx: Tx, digest: str, now: float) -> Approval | None:
    """The approved, unexpired approval for this call digest; an expired one is marked so."""
    approved = tx.approval_for(digest, "approved")
    if approved is None:
        return None
    if not approved.usable(now):
        _expire(tx, approved, now)
        return None
    return approved


def pending_for(tx: Tx, draft: Approval, now: float) -> Approval:
    """The open request for `draft`'s digest, or `draft` stored as the new one."""
    pending = tx.approval_for(draft.digest, "pending")
    if pending is not None and now < pending.expires:
        return pending
    if pending is not None:
        _expire(tx, pending, now)
    tx.put_approval(draft)
    return draft


def give_back(tx: Tx, approval_id: str) -> None:
    """Restore an approval consumed by a call that then never ran."""
    consumed = tx.approval(approval_id)
    if consumed is not None and consumed.status == "consumed":
        tx.put_approval(consumed.with_status("approved"))


def _expire(tx: Tx, approval: Approval, now: float) -> None:
    expired = approval.with_status("expired")
    tx.put_approval(expired)
    tx.append([approval_event("approval.expired", expired, now)])


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
