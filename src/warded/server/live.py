"""Pending approvals as they change: the feed behind the page's live list, and the notices.

Every worker polls the store's pending approvals (so approvals created by
another worker, another node or the command line show up too) and is poked at
once when one of its own requests holds a call. Each change bumps a version
number that the server-sent-event streams wait on. A new pending approval is
announced once across all workers: the first worker to claim
`notify:<approval id>` in the store sends the webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from warded.obligations.desk import ApprovalDesk
from warded.server.notify import Notifier
from warded.store import Store

log = logging.getLogger("warded.server")


class Live:
    def __init__(
        self,
        desk: ApprovalDesk,
        store: Store,
        poll_seconds: float,
        notifier: Notifier | None = None,
        describe: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.desk = desk
        self.store = store
        self.poll_seconds = poll_seconds
        self.notifier = notifier
        self.describe = describe
        self.version = 0
        self._pending: frozenset[str] = frozenset()
        self._changed: asyncio.Condition | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    async def run(self) -> None:
        """Poll until `stop` (the app's lifespan runs this)."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        while not self._stopping:
            try:
                await self.check()
            except Exception as exc:  # a store hiccup must not end the feed
                log.warning("approvals feed: %s", exc)
            if self._stopping:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def stop(self, feed: asyncio.Task[None]) -> None:
        """End `run` (its `feed` task) after the store read under way, and the notices
        under way: nothing of the feed uses the store once this returns."""
        self._stopping = True
        self.poke()
        await feed
        await self.settle()

    def poke(self) -> None:
        """Look again now (safe from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def check(self) -> None:
        pending = await asyncio.to_thread(self._pending_ids)
        if pending == self._pending:
            return
        new = pending - self._pending
        self._pending = pending
        self.version += 1
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
        if self.notifier is not None:
            for approval_id in sorted(new):
                task = asyncio.create_task(self._announce(approval_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the notices under way (tests, and a clean shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _pending_ids(self) -> frozenset[str]:
        return frozenset(a.id for a in self.desk.approvals("pending"))

    async def _announce(self, approval_id: str) -> None:
        assert self.notifier is not None
        claimed = await asyncio.to_thread(self._claim, approval_id)
        if not claimed:
            return
        payload: dict[str, Any] = {"event": "approval.pending", "approval": approval_id}
        if self.describe is not None:
            payload["approval"] = await asyncio.to_thread(self.describe, approval_id)
        await self.notifier.send(payload)

    def _claim(self, approval_id: str) -> bool:
        with self.store.transaction() as tx:
            return tx.claim(f"notify:{approval_id}")

    async def changes(self, since: int, keepalive: float) -> AsyncIterator[int]:
        """The version each time it moves past `since`; the same version again every
        `keepalive` seconds of quiet (so a proxy keeps the stream open)."""
        assert self._changed is not None, "the feed is not running"
        changed = self._changed
        seen = since
        while True:
            moved = _moved(self, seen)
            async with changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait_for(moved), keepalive)
            seen = self.version
            yield seen


def _moved(live: Live, seen: int) -> Callable[[], bool]:
    return lambda: live.version != seen
