"""The audit store port and its in-memory implementation."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

from warded.audit.record import GENESIS, AuditEntry, AuditRecord, Checkpoint, seal_all


class AuditStore(Protocol):
    """Append-only storage for the audit chain.

    `append` seals the entries after the current head and makes them durable
    atomically (all or none) before it returns; it raises StoreError if it
    cannot.
    """

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]: ...

    def records(self, start: int = 0) -> Iterator[AuditRecord]: ...

    def checkpoint(self) -> Checkpoint: ...

    def close(self) -> None: ...


class MemoryAuditStore:
    """An audit store in a Python list: for tests and short-lived embedding."""

    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._lock = threading.Lock()

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        with self._lock:
            head = self._records[-1].hash if self._records else GENESIS
            sealed = seal_all(entries, len(self._records), head)
            self._records.extend(sealed)
            return sealed

    def records(self, start: int = 0) -> Iterator[AuditRecord]:
        with self._lock:
            snapshot = self._records[start:]
        return iter(snapshot)

    def checkpoint(self) -> Checkpoint:
        with self._lock:
            if not self._records:
                return Checkpoint(0, GENESIS)
            return Checkpoint(len(self._records), self._records[-1].hash)

    def close(self) -> None:
        return None
