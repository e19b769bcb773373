"""The live policy bundle of a deployment of several nodes on PostgreSQL.

`push` validates a bundle exactly as a node loads it and, in one
transaction, stores it, makes its version the live one, voids the open
approvals bound to any other version, records a `policy.push` event on the
chain and notifies every node (the notification is delivered at commit). A
bundle that does not load is never stored, so it can never become live.

A node serves from `LiveSource` and keeps up with a `Follower`: it LISTENs for
the notification and also checks every `interval` seconds, so a missed
notification (a dropped connection, say) is healed; either way it swaps with
`gate.reload()`, which reads the live bundle from the source. The gate checks,
inside every decision's transaction, that the version it decided on is the
live one, so a node that has not swapped yet never executes a call decided on
a retired bundle.

    store = PostgresStore(url)
    source = LiveSource(store)
    gate = Gate(PolicyBundle.load(source.read()), source=source, store=store)
    follower = Follower(gate, store).start()
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

from warded.audit.record import AuditEntry, new_id
from warded.clock import SystemClock
from warded.errors import BundleError, Problem, StoreError
from warded.gate import Gate
from warded.obligations.desk import ApprovalDesk
from warded.policy.bundle import PolicyBundle
from warded.policy.source import BundleFiles
from warded.stores.postgres import CHANNEL, PostgresStore, _PostgresTx, connect

log = logging.getLogger("warded")

RETRY_PAUSE = 1.0  # seconds between attempts to reconnect the follower's listener


def push(store: PostgresStore, files: BundleFiles, *, by: str | None = None) -> tuple[str, int]:
    """Make a bundle live for every node; its version and how many approvals were voided.

    Raises BundleError if the bundle does not load (nothing changes), StoreError
    if the database cannot take it.
    """
    version = PolicyBundle.load(files).version
    now = time.time()
    with store.transaction() as tx:
        if not isinstance(tx, _PostgresTx):  # pragma: no cover - the store is a PostgresStore
            raise StoreError("policy push needs a PostgreSQL store")
        old = tx.live_version()
        tx.make_live(version, files, at=now, by=by)
        voided = ApprovalDesk(store, SystemClock()).void(version, now, tx)
        detail = {"event": "policy.push", "from": old, "to": version, "by": by}
        tx.append([AuditEntry(kind="event", call=new_id(), time=now, detail=detail)])
    return version, len(voided)


class LiveSource:
    """A policy source: the bundle the database says is live."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def read(self) -> BundleFiles:
        live = self.store.live()
        if live is None:
            problem = "no bundle is live in this database: run `warded policy push DIR --db URL`"
            raise BundleError([Problem("(database)", None, problem)])
        return live[1]


class Follower:
    """Keeps a gate on the database's live bundle, in a background thread."""

    def __init__(self, gate: Gate, store: PostgresStore, *, interval: float = 5.0) -> None:
        self.gate = gate
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._wake = f"warded_wake_{secrets.token_hex(8)}"  # close() notifies it
        self._thread = threading.Thread(target=self._run, name="warded-follower", daemon=True)
        self._checked = threading.Condition()
        self.listening = threading.Event()  # set while notifications are being received

    def start(self) -> Follower:
        self._thread.start()
        return self

    def check(self) -> bool:
        """Swap to the live bundle now if the gate is not on it; whether it swapped."""
        live = self.store.live_version()
        if live is None or live == self.gate.version:
            return False
        try:
            self.gate.reload()
        except BundleError as exc:
            log.error("node cannot load the live bundle %s; calls are refused: %s", live, exc)
            return False
        finally:
            with self._checked:
                self._checked.notify_all()
        return True

    def wait_for(self, version: str, timeout: float) -> bool:
        """Wait until the gate is on `version`; whether it got there in time."""
        with self._checked:
            return self._checked.wait_for(lambda: self.gate.version == version, timeout)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            try:
                with connect(self.store.url) as conn:
                    conn.execute(b"SELECT pg_notify(%s, '')", (self._wake,))
            except StoreError:
                pass  # the listener is down too; it sees the stop flag within RETRY_PAUSE
            self._thread.join(self.interval + RETRY_PAUSE + 5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self.store.url) as conn:
                    conn.execute(f"LISTEN {CHANNEL}; LISTEN {self._wake}".encode())
                    self.listening.set()
                    self._safe_check()  # what was pushed before we listened
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=self.interval, stop_after=1):
                            pass
                        if not self._stop.is_set():
                            self._safe_check()
            except Exception as exc:
                log.warning("live bundle listener: %s; reconnecting", exc)
            self.listening.clear()
            self._stop.wait(RETRY_PAUSE)

    def _safe_check(self) -> None:
        try:
            self.check()
        except StoreError as exc:
            log.warning("live bundle check failed: %s", exc)
