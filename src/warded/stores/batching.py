"""Group commit: concurrent transactions on one node share a database commit.

One writer connection per store. Callers of `transaction()` take turns on it:
the first caller of a batch begins a database transaction, and each caller
runs its body inside its own savepoint, so a body that raises rolls back only
its own work. When a caller's body is done and another caller is already
waiting for the connection, it leaves the transaction open for that caller;
the last caller of the batch (nobody waiting, or the batch full) commits it
for everyone. Every caller's `with` returns only after the commit of its batch
(and, if any member of the batch asked for durability, after that commit is
durable); if the commit fails, it fails for every member, and nothing any of
them did is kept.

A single caller pays what it did before: one transaction, one commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from warded.errors import StoreError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

MAX_BATCH = 256
COMMIT_BOUND = 120.0  # seconds a member waits for its batch's commit before giving up


class Writer(Protocol[T_co]):
    """The writer connection as the batcher drives it. Errors are StoreErrors."""

    def begin(self, crowded: bool) -> None:
        """Begin the batch's database transaction (taking the store's write lock);
        `crowded`: other callers are already waiting to join it."""
        ...

    def enter(self) -> T_co:
        """Open a savepoint for the next member and return its transaction."""
        ...

    def keep(self) -> None:
        """The member's body succeeded: its savepoint stays (it may release it later)."""
        ...

    def undo(self) -> None:
        """The member's body failed: roll back to its savepoint."""
        ...

    def commit(self, durable: bool) -> Callable[[], None] | None:
        """Commit the batch; may return what remains to make it durable, which the
        batcher runs after letting the next batch start."""
        ...

    def abort(self) -> None:
        """Roll the batch back; never raises."""
        ...


@dataclass
class _Batch:
    size: int = 0  # members whose work is in the transaction
    durable: bool = False
    broken: bool = False  # the connection failed; the batch cannot commit
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class GroupCommit(Generic[T]):
    """Leader/follower batching of `transaction()` callers on one `Writer`."""

    def __init__(
        self,
        writer: Writer[T],
        *,
        errors: tuple[type[Exception], ...] = (),
        max_batch: int = MAX_BATCH,
    ) -> None:
        """`errors`: the driver's exceptions, which leave a body as StoreError.
        `max_batch=1` turns group commit off: every transaction commits (and is
        made durable) alone, before the next one begins."""
        self._writer = writer
        self._errors = errors
        self._max = max_batch
        self._turn = threading.Lock()  # whoever holds it uses the writer connection
        self._count = threading.Lock()
        self._waiting = 0  # callers blocked on `_turn`
        self._batch: _Batch | None = None  # the open batch; only touched holding `_turn`

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[T]:
        with self._count:
            self._waiting += 1
        self._turn.acquire()
        with self._count:
            self._waiting -= 1
        batch = self._batch
        try:
            if batch is None:
                self._writer.begin(self._waiting > 0)
                batch = self._batch = _Batch()
            tx = self._writer.enter()
        except BaseException:
            if batch is None:
                self._turn.release()
            else:
                batch.broken = True
                self._hand_on(batch)
            raise
        try:
            yield tx
        except BaseException as exc:
            try:
                self._writer.undo()
            except BaseException:
                batch.broken = True
            self._hand_on(batch)
            if isinstance(exc, self._errors):
                raise StoreError(f"store transaction failed: {exc}") from None
            raise
        try:
            self._writer.keep()
        except BaseException:
            batch.broken = True
            self._hand_on(batch)
            raise
        batch.size += 1
        batch.durable |= durable
        self._hand_on(batch)
        if not batch.done.wait(COMMIT_BOUND):
            raise StoreError(f"the commit of this transaction did not finish in {COMMIT_BOUND}s")
        if batch.error is not None:
            raise StoreError(f"commit failed: {batch.error}") from None

    def _hand_on(self, batch: _Batch) -> None:
        """Leave the batch open for a waiting caller, or end it; release the turn."""
        if not batch.broken and self._waiting and batch.size < self._max:
            self._turn.release()
            return
        self._batch = None
        flush = None
        try:
            if batch.broken or batch.size == 0:
                self._writer.abort()
                if batch.size:
                    batch.error = StoreError("the store connection failed during the batch")
            else:
                try:
                    flush = self._writer.commit(batch.durable)
                except BaseException as exc:
                    batch.error = exc
                    self._writer.abort()
            if self._max == 1:
                self._flush(batch, flush)
        finally:
            self._turn.release()
        if self._max > 1:
            self._flush(batch, flush)

    @staticmethod
    def _flush(batch: _Batch, flush: Callable[[], None] | None) -> None:
        try:
            if flush is not None:
                flush()
        except BaseException as exc:
            batch.error = exc
        finally:
            batch.done.set()
