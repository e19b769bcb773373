"""The service's reading of the audit log: filtered record lists, held calls, verify status.

What an approver sees of a held call comes from the gate's own decision
record (arguments already redacted by the gate, the session's labels and the
argument provenance the policy saw), never from the approval's raw copy of
the arguments. The ledger follows the log as it grows and keeps only the
decision records that asked for an approval. The links inside free text
(`warded.links`) come with it: per argument the count and shared sources the
policy saw and, in records since links are listed, each link with its own sources.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from warded.audit.record import AuditRecord, VerifyResult, verify
from warded.links import for_approvers
from warded.store import Store

LAST_SEQ = 2**63 - 1  # the largest position a store can hold (a signed 64-bit integer)


@dataclass(frozen=True, slots=True)
class Filter:
    principal: str | None = None
    tool: str | None = None
    decision: str | None = None  # allow, deny, or a refusal code
    kind: str | None = None
    since: float | None = None
    until: float | None = None
    before: int | None = None  # only records with seq < before (paging back)
    after: int | None = None  # only records with seq > after (paging forward)

    def matches(self, body: dict[str, Any]) -> bool:
        if self.principal is not None and body.get("principal") != self.principal:
            return False
        if self.tool is not None and body.get("tool") != self.tool:
            return False
        if self.kind is not None and body.get("kind") != self.kind:
            return False
        if self.decision is not None and self.decision not in (body.get("decision"), body["code"]):
            return False
        time = body["time_us"] / 1_000_000
        if self.since is not None and time < self.since:
            return False
        return self.until is None or time <= self.until


class Ledger:
    """Follows one store's audit log."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._next = 0
        self._held: dict[str, dict[str, Any]] = {}
        self._verified: VerifyResult | None = None
        self._lock = threading.Lock()

    def sync(self) -> int:
        """Read the records appended since the last sync; returns the chain's size."""
        with self._lock:
            for record in self.store.records(self._next):
                body = record.body
                if body["kind"] == "decision" and body["code"] == "approval_required":
                    approval = body["detail"].get("approval")
                    if isinstance(approval, str):
                        self._held[approval] = _held_view(body)
                self._next = record.seq + 1
            return self._next

    def held(self, approval_id: str) -> dict[str, Any] | None:
        """What the gate recorded about the call an approval holds (redacted), if seen."""
        self.sync()
        return self._held.get(approval_id)

    def find(self, where: Filter, limit: int = 100, newest_first: bool = True) -> list[AuditRecord]:
        """Records matching `where`: the newest `limit` of them, or the oldest after `after`."""
        start = where.after + 1 if where.after is not None else 0
        if start > LAST_SEQ:
            return []
        if not newest_first:
            found = []
            for record in self._scan(start, where):
                found.append(record)
                if len(found) == limit:
                    break
            return found
        window: deque[AuditRecord] = deque(maxlen=limit)
        window.extend(self._scan(start, where))
        return list(reversed(window))

    def _scan(self, start: int, where: Filter) -> Iterator[AuditRecord]:
        for record in self.store.records(start):
            if where.before is not None and record.seq >= where.before:
                return
            if where.matches(record.body):
                yield record

    def record(self, seq: int) -> AuditRecord | None:
        if not 0 <= seq <= LAST_SEQ:
            return None
        for record in self.store.records(seq):
            return record if record.seq == seq else None
        return None

    def verified(self) -> VerifyResult:
        """The whole chain verified; the answer is kept until the chain grows."""
        size = self.sync()
        known = self._verified
        if known is not None and known.size == size:
            return known
        result = verify(self.store.records())
        self._verified = result
        return result


def _held_view(body: dict[str, Any]) -> dict[str, Any]:
    context = (body.get("request") or {}).get("context") or {}
    session = context.get("session") or {}
    return {
        "args": body.get("args"),
        "labels": list(session.get("labels", [])),
        "provenance": context.get("provenance"),
        "links": [
            a.to_json()
            for a in for_approvers(
                context.get("links"), (body.get("detail") or {}).get("links_found")
            )
        ],
        "record": body["seq"],
        "policies": body.get("policies", []),
    }
