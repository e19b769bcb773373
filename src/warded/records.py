"""The audit records the gate writes itself: events, refusals, appends whose records
must come back sealed (with reduced records as the fallback), and their times."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from warded.audit.record import AuditEntry, AuditRecord, new_id
from warded.clock import Clock
from warded.errors import RefusalCode
from warded.model import Refusal
from warded.request import instant
from warded.store import Store

log = logging.getLogger("warded")


def event_entry(event: str, now: float, detail: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(kind="event", call=new_id(), time=now, detail={"event": event, **detail})


def sealed(records: object, entries: Sequence[AuditEntry]) -> None:
    """Raise unless the store answered with one sealed record per entry, in order."""
    if not isinstance(records, list) or len(records) != len(entries):
        raise TypeError("audit store did not return the sealed records")
    for record, entry in zip(records, entries, strict=True):
        if not isinstance(record, AuditRecord) or f'"id":"{entry.id}"'.encode() not in record.raw:
            raise TypeError("audit store returned records that are not the ones appended")


def us(started: float) -> int:
    return int((time.perf_counter() - started) * 1_000_000)


def append(store: Store, entries: list[AuditEntry], session: str | None = None) -> None:
    """Append records (counting a decided call in its session); if they cannot be
    sealed in full, reduced ones are written instead, so no refusal's `ref` dangles."""
    attempt = entries
    for _ in range(2):
        try:
            with store.transaction() as tx:
                if session is not None:
                    tx.update_session(session, calls=1)
                sealed(tx.append(attempt), attempt)
            return
        except Exception as exc:
            reason = f"the full record could not be sealed ({type(exc).__name__})"
            log.error("audit append failed: %s", type(exc).__name__)
            attempt = [e.reduced(reason) for e in entries]


def refuse(
    store: Store,
    code: RefusalCode,
    base: Mapping[str, Any],
    now: float,
    started: float,
    digest: str | None = None,
    args: Any = None,
    *,
    detail: str | None = None,
    reasons: tuple[str, ...] = (),
) -> Refusal:
    entry = AuditEntry(
        kind="decision",
        time=now,
        args_digest=digest,
        args=args,
        decision="deny",
        code=code,
        reasons=reasons + ((detail,) if detail else ()),
        latency_us=us(started),
        **base,
    )
    append(store, [entry])
    return Refusal(code, ref=entry.id, detail=detail)


def now_or_wall(clock: Clock) -> float:
    """The clock's time; the wall clock's if the clock fails (a record is still written)."""
    try:
        return instant(clock.now())
    except Exception:
        return time.time()
