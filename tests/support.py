"""What many tests share: sessions in a given state (the state lives in the gate's
store, so it is put there) and a known deployment key."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from warded import Gate, Session

TEST_KEY = bytes(range(32))  # the deployment key of gates whose digests a test recomputes


def session_with(gate: Gate, labels: Iterable[str] = (), calls: int = 0) -> Session:
    """A new session whose stored state has these labels and this many decided calls."""
    session = Session(f"s-{uuid.uuid4().hex[:12]}")
    labels = sorted(labels)
    if labels or calls:
        with gate.store.transaction() as tx:
            tx.update_session(session.id, labels=labels, calls=calls)
    return session
