"""The compiled decision path of one bundle, with cedarpy as its fallback and its oracle.

`CompiledPath` reads the bundle's schema and entity store once, then
compiles slices on demand: a slice is used only once it has passed the
self-check (see `selfcheck`); one outside the compiled subset, or one that
disagreed with cedarpy, is left to cedarpy. `Recheck` re-decides a sample
of compiled decisions with cedarpy on a worker thread, off the caller's
path; a disagreement is an incident, and the slice goes back to cedarpy.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

import cedarpy
from cedarpy import pst

from warded.policy import runtime as rt
from warded.policy import schema as s
from warded.policy.compiler import CompiledSlice, Unsupported, compile_slice
from warded.policy.selfcheck import Disagreement, agrees, cedar_outcome, check

Uid = tuple[str, str]
log = logging.getLogger("warded.policy")


class CompiledPath:
    """Compiles and self-checks the slices of one bundle (schema and store read once)."""

    def __init__(self, schema: cedarpy.Schema, entities: cedarpy.Entities) -> None:
        self.cedar_schema = schema
        self.entities = entities
        self.disagreements: list[Disagreement] = []
        self.schema: s.Schema | None = None
        self.unsupported: str | None = None
        self.store = rt.Store({}, {})
        self._shared: dict[Any, Any] = {}  # converters shared by the slices (compile_slice)
        try:
            store = rt.store_from(json.loads(str(entities)))
            self.schema, self.store = s.read_schema(str(schema)), store
        except Exception as exc:  # nothing is compiled for this bundle
            self.unsupported = f"{type(exc).__name__}: {exc}"

    def slice(
        self, tree: pst.PolicySet, policies: cedarpy.PolicySet, principal: Uid, action: Uid
    ) -> CompiledSlice | None:
        """The compiled slice, if it is in the subset and agreed with cedarpy on every check."""
        if self.schema is None:
            return None
        try:
            compiled = compile_slice(
                tree.static_policies, principal, action, self.schema, self.store, self._shared
            )
        except Unsupported:
            return None
        found = check(
            compiled,
            tree,
            policies,
            principal,
            action,
            self.schema,
            self.store,
            self.entities,
            self.cedar_schema,
        )
        if found is not None:
            self.disagreements.append(found)
            log.error("compiled slice not used: %s", found)
            return None
        return compiled


Incident = Callable[[Disagreement], None]


class Recheck:
    """Re-decide every `every`-th compiled decision with cedarpy, on a worker thread.

    A disagreement calls `on_incident` and `disable` (which sends the slice
    back to cedarpy). The queue is bounded: when the worker falls behind,
    samples are dropped, never the caller delayed.
    """

    def __init__(self, every: int, on_incident: Incident | None = None, depth: int = 1024) -> None:
        if every < 1:
            raise ValueError("recheck every must be at least 1")
        self.every = every
        self.on_incident = on_incident
        self.checked = 0
        self.dropped = 0
        self._count = 0
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(depth)
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def sample(self) -> bool:
        self._count += 1
        return self._count % self.every == 0

    def submit(
        self,
        request: Mapping[str, Any],
        outcome: tuple[bool, tuple[str, ...]],
        policies: cedarpy.PolicySet,
        path: CompiledPath,
        disable: Callable[[], None],
        version: str = "",
    ) -> None:
        """Queue one compiled decision (made on bundle `version`) for re-checking."""
        try:
            self._queue.put_nowait((request, outcome, policies, path, disable, version))
        except queue.Full:
            self.dropped += 1
            return
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name="warded-recheck", daemon=True
                )
                self._worker.start()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every submitted sample is checked (or `timeout`); whether it was."""
        done = threading.Event()

        def join() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            request, outcome, policies, path, disable, version = self._queue.get()
            try:
                cedar = cedar_outcome(request, policies, path.entities, path.cedar_schema)
                if not agrees(outcome, cedar):
                    p, a = request["principal"], request["action"]
                    found = Disagreement(
                        (p["type"], p["id"]), (a["type"], a["id"]), request, outcome, cedar, version
                    )
                    disable()
                    path.disagreements.append(found)
                    log.error("compiled decision disagreed with cedarpy: %s", found.summary())
                    if self.on_incident is not None:
                        self.on_incident(found)
                self.checked += 1
            except Exception:
                log.exception("recheck failed")
            finally:
                self._queue.task_done()
