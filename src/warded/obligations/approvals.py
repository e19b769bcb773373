"""Human approvals bound to one exact call.

A permit annotated `@approval("finance")` allows a call only with an approval
from that approver group. The approval is bound to the digest of the call —
principal, tool, frozen arguments, resource, session and bundle version — so
it can never run any other call, and a new bundle version voids it. It is
single-use: consuming it happens in the same store transaction that writes
the decision record of the execution. Time only ever expires an approval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from warded.canonical import canonical_json, digest

APPROVAL_DOMAIN = "warded.approval.v1"
DEFAULT_TTL = 3600.0

Status = Literal["pending", "approved", "denied", "consumed", "expired", "voided"]
STATUSES: tuple[Status, ...] = ("pending", "approved", "denied", "consumed", "expired", "voided")
OPEN: tuple[Status, ...] = ("pending", "approved")


@dataclass(frozen=True, slots=True)
class Approver:
    """A person who decides approvals: an identity and the approver groups they belong to."""

    id: str
    groups: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Approval:
    """One approval request and its state.

    `args` is what an approver is shown: the call's arguments (canonical JSON)
    with sensitive parameters and what the input scanners found masked, never
    cut. `call_args` are the exact arguments, kept only when nothing had to be
    masked, for `Gate.run_approved`; otherwise only the agent's identical retry
    (matched by the keyed digest) can run the call, and no secret is stored.
    """

    id: str
    digest: str
    call: str
    principal: str
    tool: str
    args: str
    args_digest: str
    resource: Mapping[str, str]
    session: str
    bundle_version: str
    group: str
    policy: str
    created: float
    expires: float
    status: Status = "pending"
    decided_by: str | None = None
    decided_at: float | None = None
    reason: str | None = None
    call_args: str | None = None

    def usable(self, now: float) -> bool:
        """Approved, not yet consumed, not expired."""
        return self.status == "approved" and now < self.expires

    def with_status(self, status: Status, **changes: Any) -> Approval:
        return replace(self, status=status, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "digest": self.digest,
            "call": self.call,
            "principal": self.principal,
            "tool": self.tool,
            "args": self.args,
            "args_digest": self.args_digest,
            "resource": dict(self.resource),
            "session": self.session,
            "bundle_version": self.bundle_version,
            "group": self.group,
            "policy": self.policy,
            "created": self.created,
            "expires": self.expires,
            "status": self.status,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "reason": self.reason,
            "call_args": self.call_args,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Approval:
        return cls(**{**data, "resource": dict(data["resource"])})


def binding_digest(
    principal: str,
    tool: str,
    args_digest: str,
    resource: Mapping[str, str],
    session: str,
    bundle_version: str,
) -> str:
    """The digest an approval is bound to: one call, in one session, under one bundle."""
    body = {
        "principal": principal,
        "tool": tool,
        "args_digest": args_digest,
        "resource": dict(resource),
        "session": session,
        "bundle_version": bundle_version,
    }
    return digest(APPROVAL_DOMAIN, canonical_json(body))
