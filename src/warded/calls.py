"""A call on its way through the gate: as decided, as authorized, and the exceptions
that steer it (decide again, refuse inside the transaction, the tool never ran)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warded.audit.record import AuditEntry
from warded.errors import RefusalCode
from warded.model import Decision
from warded.obligations.limits import Reservation
from warded.obligations.plan import Obligations
from warded.redaction import Secrets
from warded.tools import Tool


@dataclass(frozen=True, slots=True)
class Decided:
    """One call as decided, before its record is committed."""

    entry: AuditEntry
    shadows: tuple[AuditEntry, ...]
    decision: Decision
    owed: Obligations | None  # None: denied
    tool: Tool
    frozen: bytes
    kwargs: dict[str, Any]
    digest: str
    resource: Mapping[str, str]
    session: str
    labels: frozenset[str]  # the session's labels the decision saw
    now: float
    call_id: str | None
    secrets: Secrets
    value: Any  # the frozen arguments, thawed
    masked: Any  # ... with what the input scanners found masked


@dataclass(frozen=True, slots=True)
class Authorized:
    call: str
    tool: Tool
    kwargs: dict[str, Any]
    digest: str
    decision: Decision
    reservations: tuple[Reservation, ...]
    redact: frozenset[str]  # output scanners whose findings the determining permits mask
    approval: str | None  # the approval this call consumed
    secrets: Secrets
    approved: tuple[str, ...] = ()  # an approved call's strings as the approvers saw them


class Unknown(LookupError):
    """The tool is not registered, or this principal can never be permitted it."""


class Stale(Exception):
    """The bundle or the session's labels changed after the decision: decide again.

    `live` is the version the store says is live for every node, if this gate is
    not on it (another node pushed a bundle)."""

    def __init__(self, live: str | None = None) -> None:
        self.live = live


class NotRun(Exception):
    """The tool's body never started (its coroutine could not be run)."""


class Unawaited(Exception):
    """The tool handed back an awaitable that is not a coroutine inside a running event
    loop: it may already be running there, so what it did is unknown."""


class Held(Exception):
    """Raised inside a store transaction to roll it back and refuse the call."""

    def __init__(self, code: RefusalCode, reason: str, detail: Mapping[str, Any] | None = None):
        self.code = code
        self.reason = reason
        self.detail = detail or {}
