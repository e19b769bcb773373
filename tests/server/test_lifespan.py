"""Stopping the service: nothing still reads the store when it closes.

The approvals feed reads the store in a worker thread; a shutdown that only
cancelled the feed's task closed the store under that read (on SQLite, a
segmentation fault in the test suite). The read here is held until the
shutdown has begun, then let go: the store must close after it, not before.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from warded import ManualClock
from warded.server import create_app, load_config

WAIT = 60.0


def test_the_store_closes_only_after_the_feeds_read_under_way(config_path: Path) -> None:
    app = create_app(load_config(config_path), clock=ManualClock())
    service = app.state.service
    store, live = service.gate.store, service.live
    entered, stopping, release = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []
    real_read, real_close, real_stop = live._pending_ids, store.close, live.stop

    def held_read() -> Any:
        if not entered.is_set():
            entered.set()
            assert release.wait(WAIT), "the read was never let go"
            found = real_read()  # raises if the store closed under it
            order.append("read done")
            return found
        return real_read()

    def close() -> None:
        order.append("close")
        real_close()

    async def stop(feed: Any) -> None:
        stopping.set()
        await real_stop(feed)

    live._pending_ids = held_read
    store.close = close
    live.stop = stop
    client = TestClient(app)
    client.__enter__()
    assert entered.wait(WAIT), "the feed never read the store"
    shutdown = threading.Thread(target=client.__exit__, args=(None, None, None))
    shutdown.start()
    try:
        assert stopping.wait(WAIT), "the shutdown did not stop the feed"
    finally:
        release.set()
        shutdown.join(WAIT)
    assert not shutdown.is_alive()
    assert order == ["read done", "close"]
