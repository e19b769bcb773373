"""The obligation state is evidence too: recompute it from the chain, compare with the store.

Approvals, limit counters and session labels live in tables beside the audit
chain, where the gate reads them fast. Every change to them is also a chain
record, written in the same transaction: each approval transition is an
`approval.<status>` event naming the new status; each reservation is listed in
its allow decision's `detail.reservations` and each release in its outcome's
`detail.released`; each label added to a session is in an outcome's
`detail.labels_added` or a `session.labels` event. `verify_state` folds the
(verified) chain into the state it implies and reports every row of the store
that disagrees — a hand-forged `approved` row, a reset budget counter, a
removed `untrusted` label — by what and id. It also checks that each approval's
transitions on the chain are ones the gate makes (consumed only after approved,
and so on): a forged `approved` row that the agent's retry then consumed leaves
a table that agrees with the chain's last event, but a chain on which nobody
approved it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from warded.audit.record import AuditRecord
from warded.store import Store

What = Literal["approval", "counter", "session"]

# each approval transition the gate makes, and the states it can follow
_AFTER: dict[str, frozenset[str | None]] = {
    "approval.created": frozenset({None}),
    "approval.approved": frozenset({"pending"}),
    "approval.denied": frozenset({"pending"}),
    "approval.consumed": frozenset({"approved"}),
    "approval.returned": frozenset({"consumed"}),
    "approval.expired": frozenset({"pending", "approved"}),
    "approval.voided": frozenset({"pending", "approved"}),
}


@dataclass(frozen=True, slots=True)
class StateProblem:
    """A row of the store that the chain does not account for."""

    what: What
    id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what} {self.id}: {self.reason}"


@dataclass
class ChainState:
    """The obligation state the chain implies."""

    approvals: dict[str, str] = field(default_factory=dict)  # id -> status
    illegal: dict[str, str] = field(default_factory=dict)  # id -> its first impossible transition
    counters: dict[tuple[str, int], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    labels: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def fold(self, body: dict[str, Any]) -> None:
        detail = body.get("detail") or {}
        kind = body.get("kind")
        if kind == "event":
            event = str(detail.get("event", ""))
            if event in _AFTER:
                approval = str(detail["approval"])
                before = self.approvals.get(approval)
                if before not in _AFTER[event] and approval not in self.illegal:
                    after = "no record of it" if before is None else before
                    self.illegal[approval] = f"the chain has {event} after {after}"
                self.approvals[approval] = str(detail["status"])
            elif event == "session.labels":
                self.labels[str(detail["session"])].update(detail.get("labels_added", ()))
        elif kind == "decision":
            if body.get("decision") == "allow" and body.get("mode") == "enforce":
                for r in detail.get("reservations", ()):
                    self.counters[(r["key"], int(r["window"]))] += Decimal(r["amount"])
        elif kind == "outcome":
            for r in detail.get("released", ()):
                key = (r["key"], int(r["window"]))
                self.counters[key] = max(Decimal(0), self.counters[key] - Decimal(r["amount"]))
            if detail.get("labels_added") and body.get("session"):
                self.labels[str(body["session"])].update(detail["labels_added"])


def chain_state(records: Iterable[AuditRecord]) -> ChainState:
    """The state a chain implies (records that cannot be read are skipped: `verify`
    reports those)."""
    state = ChainState()
    for record in records:
        try:
            state.fold(record.body)
        except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation):
            continue
    return state


def verify_state(records: Iterable[AuditRecord], store: Store) -> list[StateProblem]:
    """Every approval, counter and session label of `store` the chain disagrees with."""
    state = chain_state(records)
    problems: list[StateProblem] = []
    with store.transaction() as tx:
        stored = {a.id: a.status for a in tx.approvals()}
    for approval_id, status in sorted(stored.items()):
        expected = state.approvals.get(approval_id)
        if expected is None:
            problems.append(StateProblem("approval", approval_id, "no record of it on the chain"))
        elif expected != status:
            reason = f"the table says {status}, the chain says {expected}"
            problems.append(StateProblem("approval", approval_id, reason))
    for approval_id, reason in sorted(state.illegal.items()):
        problems.append(StateProblem("approval", approval_id, reason))
    for approval_id in sorted(state.approvals.keys() - stored.keys()):
        reason = "on the chain, missing from the table"
        problems.append(StateProblem("approval", approval_id, reason))
    for (key, window), spent in sorted(state.counters.items()):
        total = store.counter(key, window)
        if total != spent:
            reason = f"window {window}: the table says {total}, the chain says {spent}"
            problems.append(StateProblem("counter", key, reason))
    for session_id, labels in sorted(state.labels.items()):
        kept = store.session(session_id).labels
        if not labels <= kept:
            missing = ", ".join(sorted(labels - kept))
            problems.append(StateProblem("session", session_id, f"labels removed: {missing}"))
    return problems
