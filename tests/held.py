"""A store that holds a call between its decision and the transaction that records it."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

from warded import Store
from warded.store import Tx

WAIT = 20.0  # seconds: the bound on every wait; never reached when the code is right


class HeldStore:
    """A store whose first transaction opened by a thread other than the one that
    made it waits until `release` is set (`arrived` tells it is waiting): the
    moment between a call's decision and its commit."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.owner = threading.get_ident()
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._held = False
        self._lock = threading.Lock()

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        with self._lock:
            hold = not self._held and threading.get_ident() != self.owner
            self._held |= hold
        if hold:
            self.arrived.set()
            assert self.release.wait(WAIT), "the held transaction was never released"
        return self.inner.transaction(durable=durable)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
