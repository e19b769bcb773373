"""The store port: one transactional store for the audit chain, approvals, limits
and session state.

The gate needs a few things to happen atomically — a decision record with
the consumption of an approval, the reservation of every limit it is
subject to and the update of its session — so audit, approvals, counters and
sessions live behind one interface with transactions. Backends: `MemoryStore`
here (tests, short-lived embedding), `warded.stores.sqlite.SQLiteStore` (the
embedded default) and `warded.stores.postgres.PostgresStore` (several gate
nodes on one database); `warded.stores.open_store` opens either.

A transaction either commits everything it did or nothing; an exception
inside `with store.transaction() as tx:` rolls it back.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from warded.audit.record import GENESIS, AuditEntry, AuditRecord, Checkpoint, seal_all
from warded.model import Remembered, SessionState, Source
from warded.obligations.approvals import Approval, Status
from warded.obligations.limits import Reservation


class Tx(Protocol):
    """What can happen inside one store transaction."""

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Seal entries onto the chain (visible to others only at commit)."""
        ...

    def live_version(self) -> str | None:
        """The bundle version the database says is live for every node (`warded
        policy push`), as of this transaction; None if the store has no such notion."""
        ...

    def reserve(self, reservation: Reservation) -> bool:
        """Add the amount to its counter unless the total would exceed the limit."""
        ...

    def release(self, reservation: Reservation) -> None:
        """Take a reserved amount back off its counter."""
        ...

    def claim(self, key: str) -> bool:
        """Record a single-use key (a call id); False if it was used before."""
        ...

    def approval(self, approval_id: str) -> Approval | None: ...

    def approval_for(self, digest: str, status: Status) -> Approval | None:
        """The newest approval bound to `digest` in `status`."""
        ...

    def put_approval(self, approval: Approval) -> None: ...

    def approvals(self, status: Status | None = None) -> list[Approval]:
        """Approvals (in `status`, if given), oldest first."""
        ...

    def session(self, session_id: str) -> SessionState:
        """The session's state; an unknown session has no labels and no calls."""
        ...

    def update_session(
        self, session_id: str, *, labels: Iterable[str] = (), calls: int = 0
    ) -> SessionState:
        """Add labels (they only ever grow) and count calls; the new state."""
        ...

    def remember(
        self,
        session_id: str,
        sources: Sequence[Source],
        *,
        limit: int,
        overflowed: bool = False,
    ) -> Remembered:
        """Remember sources in the session (`warded.provenance`), keeping at most `limit`
        characters: the oldest go first, and a session that lost any (or is told it
        `overflowed`) stays overflowed. Returns the session's new version and
        overflow, the sources it kept (numbered) and, as `first`, the number after
        the last one it evicted (1 if none)."""
        ...


class Store(Protocol):
    """A transactional store. `append` is a transaction holding only an append."""

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        """A transaction; `durable=False` may defer the fsync (outcomes, releases)."""
        ...

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]: ...

    def records(self, start: int = 0) -> Iterator[AuditRecord]: ...

    def checkpoint(self) -> Checkpoint: ...

    def counter(self, key: str, window: int) -> Decimal: ...

    def session(self, session_id: str) -> SessionState:
        """The session's committed state, read outside any transaction."""
        ...

    def sources(self, session_id: str, after: int = 0) -> Remembered:
        """The session's committed remembered sources numbered after `after`."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """Everything in Python objects behind one lock."""

    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._counters: dict[tuple[str, int], Decimal] = {}
        self._approvals: dict[str, Approval] = {}
        self._claimed: set[str] = set()
        self._sessions: dict[str, SessionState] = {}
        self._sources: dict[str, list[tuple[int, Source]]] = {}
        self._lock = threading.RLock()

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._lock:
            tx = _MemoryTx(self)
            yield tx
            self._records.extend(tx.sealed)
            self._counters.update(tx.counters)
            self._approvals.update(tx.changed)
            self._claimed |= tx.claimed
            self._sessions.update(tx.sessions)
            for session_id, (evicted, added) in tx.remembered.items():
                kept = self._sources.setdefault(session_id, [])
                if evicted:
                    del kept[: next((i for i, e in enumerate(kept) if e[0] > evicted), len(kept))]
                kept.extend(added)

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._transaction()

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        with self.transaction() as tx:
            return tx.append(entries)

    def records(self, start: int = 0) -> Iterator[AuditRecord]:
        with self._lock:
            return iter(self._records[start:])

    def checkpoint(self) -> Checkpoint:
        with self._lock:
            if not self._records:
                return Checkpoint(0, GENESIS)
            return Checkpoint(len(self._records), self._records[-1].hash)

    def counter(self, key: str, window: int) -> Decimal:
        with self._lock:
            return self._counters.get((key, window), Decimal(0))

    def session(self, session_id: str) -> SessionState:
        with self._lock:
            return self._sessions.get(session_id) or SessionState(session_id)

    def sources(self, session_id: str, after: int = 0) -> Remembered:
        with self._lock:
            state = self.session(session_id)
            kept = self._sources.get(session_id, [])
            first = kept[0][0] if kept else state.remembered + 1
            later = tuple(kept[bisect.bisect_right(kept, after, key=lambda e: e[0]) :])
            return Remembered(state.remembered, state.overflowed, first, later)

    def close(self) -> None:
        return None


class _MemoryTx:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.sealed: list[AuditRecord] = []
        self.counters: dict[tuple[str, int], Decimal] = {}
        self.changed: dict[str, Approval] = {}
        self.claimed: set[str] = set()
        self.sessions: dict[str, SessionState] = {}
        self.remembered: dict[str, tuple[int, list[tuple[int, Source]]]] = {}  # evicted, added

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        chain = self.store._records + self.sealed
        head = chain[-1].hash if chain else GENESIS
        sealed = seal_all(entries, len(chain), head)
        self.sealed.extend(sealed)
        return sealed

    def live_version(self) -> str | None:
        return None

    def _total(self, key: tuple[str, int]) -> Decimal:
        return self.counters.get(key, self.store._counters.get(key, Decimal(0)))

    def reserve(self, reservation: Reservation) -> bool:
        key = (reservation.key, reservation.window)
        total = self._total(key) + reservation.amount
        if total > reservation.limit:
            return False
        self.counters[key] = total
        return True

    def release(self, reservation: Reservation) -> None:
        key = (reservation.key, reservation.window)
        self.counters[key] = max(Decimal(0), self._total(key) - reservation.amount)

    def claim(self, key: str) -> bool:
        if key in self.claimed or key in self.store._claimed:
            return False
        self.claimed.add(key)
        return True

    def approval(self, approval_id: str) -> Approval | None:
        return self.changed.get(approval_id) or self.store._approvals.get(approval_id)

    def approval_for(self, digest: str, status: Status) -> Approval | None:
        found = [a for a in self.approvals(status) if a.digest == digest]
        return max(found, key=lambda a: a.created) if found else None

    def put_approval(self, approval: Approval) -> None:
        self.changed[approval.id] = approval

    def approvals(self, status: Status | None = None) -> list[Approval]:
        merged = {**self.store._approvals, **self.changed}
        found = [a for a in merged.values() if status is None or a.status == status]
        return sorted(found, key=lambda a: a.created)

    def session(self, session_id: str) -> SessionState:
        return self.sessions.get(session_id) or self.store.session(session_id)

    def update_session(
        self, session_id: str, *, labels: Iterable[str] = (), calls: int = 0
    ) -> SessionState:
        state = self.session(session_id)
        state = replace(state, labels=state.labels | frozenset(labels), calls=state.calls + calls)
        self.sessions[session_id] = state
        return state

    def remember(
        self,
        session_id: str,
        sources: Sequence[Source],
        *,
        limit: int,
        overflowed: bool = False,
    ) -> Remembered:
        state = self.session(session_id)
        evicted, added = self.remembered.get(session_id, (0, []))
        stored = self.store._sources.get(session_id, [])
        oldest = ((q, s.size) for q, s in [*stored, *added] if q > evicted)
        plan = admit(state.kept, state.remembered, sources, limit, oldest)
        added = [e for e in added if e[0] > plan.evicted] + plan.added
        self.remembered[session_id] = (max(evicted, plan.evicted), added)
        state = replace(
            state,
            remembered=plan.version,
            overflowed=state.overflowed or overflowed or plan.lost,
            kept=plan.kept,
        )
        self.sessions[session_id] = state
        return plan.remembered(state)


@dataclass(frozen=True, slots=True)
class Admission:
    """What remembering some sources does to a session's kept ones (`admit`)."""

    added: list[tuple[int, Source]]  # numbered
    evicted: int  # kept entries numbered up to this one go
    version: int  # the session's new `remembered`
    lost: bool  # something was evicted or could not be kept
    kept: int  # the session's new `kept`

    def remembered(self, state: SessionState) -> Remembered:
        """What `Tx.remember` returns, given the session's new state."""
        return Remembered(state.remembered, state.overflowed, self.evicted + 1, tuple(self.added))


def admit(
    kept: int,
    version: int,
    sources: Sequence[Source],
    limit: int,
    oldest: Iterable[tuple[int, int]],
) -> Admission:
    """Number new sources after `version` and choose what to evict so that at most
    `limit` characters stay: `kept` characters are kept now, `oldest` yields the
    (number, size) of each kept source, oldest first (read only as far as
    needed). A source larger than the limit is not kept at all."""
    added: list[tuple[int, Source]] = []
    lost = False
    for source in sources:
        version += 1
        if source.size > limit:
            lost = True
        else:
            added.append((version, source))
            kept += source.size
    evicted = 0
    if kept > limit:
        for seq, size in itertools.chain(oldest, ((q, s.size) for q, s in added)):
            kept -= size
            evicted = seq
            lost = True
            if kept <= limit:
                break
    return Admission([e for e in added if e[0] > evicted], evicted, version, lost, kept)
