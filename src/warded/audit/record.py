"""Audit records and the hash chain.

Each stored record is the canonical JSON (RFC 8785) of its body, which holds
its position `seq` and the previous record's hash `prev`; its hash is a
domain-separated SHA-256 over those exact bytes. Editing, deleting,
reordering or inserting a record breaks the chain at that record; truncation
is caught against an exported `Checkpoint`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from warded.canonical import canonical_json, digest
from warded.errors import ArgumentError

AUDIT_DOMAIN = "warded.audit.v1"
GENESIS = "0" * 64

Kind = Literal["decision", "outcome", "event"]
_EVIDENCE = ("labels_added", "released")  # detail a reduced outcome keeps, if it can


def new_id() -> str:
    """A random, opaque record or call id."""
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What the gate asks the store to append; the store seals it into the chain."""

    kind: Kind
    call: str
    time: float
    principal: str | None = None
    tool: str | None = None
    args_digest: str | None = None
    args: Any = None
    decision: Literal["allow", "deny"] | None = None
    code: str | None = None
    policies: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    bundle_version: str | None = None
    mode: str = "enforce"
    outcome: str | None = None
    latency_us: int | None = None
    request: Mapping[str, Any] | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    session: str | None = None

    def reduced(self, reason: str) -> AuditEntry:
        """This entry without anything that may fail to seal: no copy of the
        arguments, no request, no free-form detail; `reason` says why.

        What stays is what the gate itself produced (ids, codes, digests,
        policy ids, the bundle version), each made printable, so a decision
        record is never lost because its full form could not be sealed; and,
        where they can be sealed, the labels an outcome added and the
        reservations it released (the chain must account for them:
        `warded.audit.state`).
        """
        kept = {k: self.detail[k] for k in _EVIDENCE if k in self.detail}
        try:
            canonical_json(kept)
        except ArgumentError:
            kept = {}
        return AuditEntry(
            kind=self.kind,
            call=_text(self.call),
            time=self.time if isinstance(self.time, float | int) else 0.0,
            principal=None if self.principal is None else _text(self.principal),
            tool=None if self.tool is None else _text(self.tool),
            args_digest=None if self.args_digest is None else _text(self.args_digest),
            decision=self.decision,
            code=None if self.code is None else _text(self.code),
            policies=tuple(_text(p) for p in self.policies),
            bundle_version=None if self.bundle_version is None else _text(self.bundle_version),
            mode=_text(self.mode),
            outcome=None if self.outcome is None else _text(self.outcome),
            latency_us=self.latency_us if type(self.latency_us) is int else None,
            detail={**kept, "reduced": _text(reason)},
            id=_text(self.id),
            session=None if self.session is None else _text(self.session),
        )

    def body(self, seq: int, prev: str) -> dict[str, Any]:
        return {
            "seq": seq,
            "prev": prev,
            "id": self.id,
            "kind": self.kind,
            "call": self.call,
            "time_us": int(self.time * 1_000_000),
            "principal": self.principal,
            "session": self.session,
            "tool": self.tool,
            "args_digest": self.args_digest,
            "args": self.args,
            "decision": self.decision,
            "code": self.code,
            "policies": list(self.policies),
            "reasons": list(self.reasons),
            "bundle_version": self.bundle_version,
            "mode": self.mode,
            "outcome": self.outcome,
            "latency_us": self.latency_us,
            "request": None if self.request is None else dict(self.request),
            "detail": dict(self.detail),
        }


def _text(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:512].encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A sealed record: its canonical bytes and their chained hash."""

    seq: int
    hash: str
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.raw)
        return body

    def to_json(self) -> dict[str, Any]:
        return {**self.body, "hash": self.hash}


def seal(entry: AuditEntry, seq: int, prev: str) -> AuditRecord:
    """Chain `entry` after a record whose hash is `prev`."""
    raw = canonical_json(entry.body(seq, prev))
    return AuditRecord(seq, digest(AUDIT_DOMAIN, raw), raw)


def seal_all(entries: Iterable[AuditEntry], seq: int, prev: str) -> list[AuditRecord]:
    out = []
    for entry in entries:
        record = seal(entry, seq, prev)
        out.append(record)
        seq, prev = seq + 1, record.hash
    return out


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain's size and head hash, exported so truncation can be detected later."""

    size: int
    head: str

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "head": self.head}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        size, head = data.get("size"), data.get("head")
        if not isinstance(size, int) or size < 0 or not isinstance(head, str) or len(head) != 64:
            raise ValueError('checkpoint must be {"size": int >= 0, "head": 64 hex chars}')
        return cls(size, head)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """`ok`, or the index of the first bad record and what is wrong with it."""

    ok: bool
    size: int
    head: str
    first_bad: int | None = None
    reason: str | None = None


def verify(records: Iterable[AuditRecord], checkpoint: Checkpoint | None = None) -> VerifyResult:
    """Walk the chain; name the first record that does not verify."""
    prev, count = GENESIS, 0
    hashes_at: dict[int, str] = {}
    for index, record in enumerate(records):
        bad = _check(record, index, prev)
        if bad:
            return VerifyResult(False, index, prev, index, bad)
        prev, count = record.hash, index + 1
        if checkpoint is not None and index == checkpoint.size - 1:
            hashes_at[index] = record.hash
    if checkpoint is not None and checkpoint.size > 0:
        if count < checkpoint.size:
            reason = f"log has {count} records, checkpoint says at least {checkpoint.size}"
            return VerifyResult(False, count, prev, count, reason)
        if hashes_at.get(checkpoint.size - 1) != checkpoint.head:
            reason = "record does not match the checkpoint's head hash"
            return VerifyResult(False, count, prev, checkpoint.size - 1, reason)
    return VerifyResult(True, count, prev)


def _check(record: AuditRecord, index: int, prev: str) -> str | None:
    if digest(AUDIT_DOMAIN, record.raw) != record.hash:
        return "hash does not match the record's contents"
    try:
        body = json.loads(record.raw)
    except ValueError:
        return "record is not valid JSON"
    if not isinstance(body, dict):
        return "record is not an object"
    if body.get("seq") != index or record.seq != index:
        return f"out of sequence (expected {index})"
    if body.get("prev") != prev:
        return "previous-hash link is broken"
    if canonical_json(body) != record.raw:
        return "record is not in canonical form"
    return None
