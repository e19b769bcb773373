"""The gate: lists visible tools, decides every call, audits before acting, executes.

One path per call (DESIGN.md, "The request lifecycle"):
resolve → freeze → validate → build the request → decide → apply obligations
and record the decision (one store transaction) → execute → record the
outcome. Every failure before execution is a refusal, never an exception, and
the tool does not run. Every path after execution records the outcome and
applies the tool's labels; the caller gets the result or a `ToolFailure`.

The transaction that records a decision re-checks what the decision was made
on: the live bundle (a reload swaps it inside a store transaction, so after
`reload()` returns no decision of the old bundle is recorded, and none is
executed) and the session's labels. If either changed, the call is decided
again. On a store shared by several nodes, the bundle version the store says
is live (`warded policy push`) is checked too; a gate behind it reloads from
its policy source first, and refuses if it cannot get there.

The stages live beside this module: `warded.authorize` (up to the decision),
`warded.commit` (its transaction), `warded.running` (the tool's body, timeouts)
and `warded.outcome` (the output path); the tools in `warded.registry`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from warded.authorize import authorize, context_of, scan_arguments
from warded.calls import Unknown
from warded.canonical import canonical_json, thaw
from warded.clock import Clock, SystemClock
from warded.decisions import checked, cited
from warded.errors import ApprovalError, ArgumentError, BundleError, Problem, WardedError
from warded.keys import deployment_key
from warded.model import (
    Decision,
    Mode,
    Principal,
    Refusal,
    Session,
    SessionState,
    Source,
    ToolSpec,
)
from warded.obligations.approvals import DEFAULT_TTL
from warded.obligations.desk import ApprovalDesk
from warded.obligations.limits import Reservation
from warded.obligations.plan import obligations
from warded.outcome import finish
from warded.policy.bundle import PolicyBundle
from warded.policy.compiled import Recheck
from warded.policy.engine import Engine
from warded.policy.selfcheck import Disagreement
from warded.policy.source import BundleFiles, DirectorySource, PolicySource
from warded.provenance import LIMIT, Indexes, check_source
from warded.records import append, event_entry, now_or_wall
from warded.redaction import DefaultRedactor, Redactor
from warded.registry import ToolRegistry
from warded.request import instant, resource_of, utf8
from warded.running import abandon, execute, executor, loop_running, timed_out
from warded.scanners.base import Scanner, builtin_scanner
from warded.store import MemoryStore, Store
from warded.tools import Tool

log = logging.getLogger("warded")


class Gate(ToolRegistry):
    """The enforcement point for one set of tools and one live policy bundle."""

    def __init__(
        self,
        bundle: PolicyBundle,
        *,
        source: PolicySource | None = None,
        store: Store | None = None,
        clock: Clock | None = None,
        redactor: Redactor | None = None,
        decision_timeout: float | None = None,
        approval_ttl: float = DEFAULT_TTL,
        scanners: Sequence[Scanner] = (),
        output_scanners: Sequence[Scanner] = (),
        key: bytes | str | Path | None = None,
        remember: int = LIMIT,
        compiled: bool = True,
        recheck: int | None = None,
    ) -> None:
        """`key` keys the digests of argument values (see `warded.keys`): bytes, or a
        key file; by default from the environment or the store's key file.
        `remember` bounds the characters of content each session remembers for
        argument provenance (`warded.provenance`; oldest first out).

        `compiled=False` decides every call with cedarpy (no compiled slices; see
        docs/guarantees.md, G19). `recheck=n` re-decides every n-th compiled
        decision with cedarpy on a worker thread, off the caller's path: a
        disagreement is recorded in the audit log as a `policy.incident` event,
        and that slice is decided by cedarpy from then on."""
        self._compiled = compiled
        self._recheck = None if recheck is None else Recheck(recheck, self._incident)
        self._engine = self._new_engine(bundle)
        self._shadow: Engine | None = None
        self._source = source
        self._tools: dict[str, Tool] = {}
        self.store: Store = store if store is not None else MemoryStore()
        self._key = deployment_key(
            key, getattr(self.store, "key_file", None), shared=getattr(self.store, "shared", False)
        )
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.redactor: Redactor = redactor if redactor is not None else DefaultRedactor()
        self.decision_timeout = decision_timeout
        self.approval_ttl = approval_ttl
        self.scanners = tuple(scanners)
        self._scanners: dict[str, tuple[Scanner, ...]] = {}
        self.output_scanners = tuple(output_scanners)
        self._told: tuple[object, object, tuple[Scanner, ...]] | None = None  # _tool_scanners
        self.approvals = ApprovalDesk(self.store, self.clock)
        self._input_scanners(self._engine)  # a declared scan field without its scanner fails here
        self._reload_lock = threading.Lock()
        self._catching_up = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        if isinstance(remember, bool) or not isinstance(remember, int) or remember < 0:
            raise ValueError("remember is a number of characters, 0 or more")
        self.remember = remember
        self._indexes = Indexes()

    @classmethod
    def from_directory(cls, path: str | Path, **kwargs: Any) -> Gate:
        """A gate whose bundle (and later reloads) come from a policy directory."""
        source = DirectorySource(path)
        return cls(PolicyBundle.load(source.read()), source=source, **kwargs)

    # -- policy -------------------------------------------------------------

    @property
    def bundle(self) -> PolicyBundle:
        return self._engine.bundle

    @property
    def version(self) -> str:
        return self._engine.version

    def reload(self, new: PolicyBundle | BundleFiles | str | Path | None = None) -> str:
        """Swap in a new bundle atomically and return its version.

        Raises BundleError if the new bundle is invalid; the running one stays.
        Once this returns, no call decided on the old bundle is recorded as
        allowed or executed (calls already recorded are in flight and carry
        the version they were decided under). A new version voids every open
        approval.
        """
        bundle = self._load(new)
        engine = self._new_engine(bundle)
        self._input_scanners(engine)
        now = now_or_wall(self.clock)
        with self._reload_lock:
            old = self._engine.version
            try:
                with self.store.transaction() as tx:
                    # swapped inside a store transaction: ordered with every decision's
                    # transaction, each of which checks the version it was decided on
                    self._engine = engine
                    tx.append([event_entry("reload", now, {"from": old, "to": bundle.version})])
                    # a change voids every open approval: one bound to the new version
                    # outlived an earlier change whose voiding the store never took
                    keep = bundle.version if bundle.version == old else None
                    self.approvals.void(keep, now, tx)
            except Exception as exc:
                log.error("could not record the reload or void approvals: %s", type(exc).__name__)
            self._engine = engine  # a revocation takes effect even when the store fails
        return bundle.version

    def shadow(self, new: PolicyBundle | BundleFiles | str | Path | None) -> str | None:
        """Run a bundle beside the live one: it decides and is logged, never enforced."""
        if new is None:
            self._shadow = None
            return None
        bundle = self._load(new)
        self._shadow = self._new_engine(bundle, "shadow")
        return bundle.version

    def _new_engine(self, bundle: PolicyBundle, mode: Mode = "enforce") -> Engine:
        return Engine(bundle, mode, compiled=self._compiled, recheck=self._recheck)

    def _incident(self, found: Disagreement) -> None:
        """A compiled decision the re-check found cedarpy disagreeing with: an audit event.

        It names the request's principal, action and resource and both answers,
        never the context or Cedar's error messages (either may hold the call's
        arguments, which are recorded, redacted, with the decision itself)."""
        request = found.request
        detail = {
            "kind": "compiled_decision_disagreed",
            "bundle_version": found.bundle_version,
            "principal": f"{found.principal[0]}::{found.principal[1]}",
            "action": f"{found.action[0]}::{found.action[1]}",
            "resource": dict(request.get("resource") or {}),
            "compiled": {"allowed": found.compiled[0], "policies": list(found.compiled[1])},
            "cedar": {
                "decision": found.cedar[0],
                "policies": list(found.cedar[1]),
                "errors": len(found.cedar[2]),  # Cedar's messages may quote argument values
            },
            "action_taken": "slice decided by cedarpy from now on",
        }
        append(self.store, [event_entry("policy.incident", now_or_wall(self.clock), detail)])

    def _load(self, new: PolicyBundle | BundleFiles | str | Path | None) -> PolicyBundle:
        try:
            if isinstance(new, PolicyBundle):
                return new
            if isinstance(new, BundleFiles):
                return PolicyBundle.load(new)
            if isinstance(new, str | Path):
                return PolicyBundle.from_directory(new)
            if self._source is None:
                raise BundleError([Problem("(gate)", None, "no policy source to reload from")])
            files = self._source.read()
            if not isinstance(files, BundleFiles):
                raise BundleError([Problem("(source)", None, "policy source returned no bundle")])
            return PolicyBundle.load(files)
        except BundleError:
            raise
        except Exception as exc:
            raise BundleError([Problem("(source)", None, f"{type(exc).__name__}: {exc}")]) from None

    # -- tools --------------------------------------------------------------

    def tools(self, principal: Principal, session: Session | None = None) -> list[ToolSpec]:
        """The tools some call could be permitted for; the rest do not exist for this principal.

        With a session, a tool that no call could be permitted in the session's
        current state (its labels) is left out too.
        """
        engine = self._engine
        labels = None if session is None else self.store.session(session.id).labels
        return [t.spec() for n, t in self._tools.items() if engine.visible(principal, n, labels)]

    # -- sessions -------------------------------------------------------------

    def session_state(self, session: Session | str) -> SessionState:
        """The session's state as the store keeps it (labels, decided calls)."""
        return self.store.session(session if isinstance(session, str) else session.id)

    def label(self, session: Session, labels: Sequence[str], *, reason: str = "") -> SessionState:
        """Add labels to a session (they never go away); recorded in the audit log.

        For a host that knows content from outside entered the session some
        other way than through a tool of this gate.
        """
        added = sorted(set(labels))
        if not all(isinstance(x, str) and x for x in added):
            raise WardedError("labels must be non-empty strings")
        with self.store.transaction() as tx:
            state = tx.update_session(session.id, labels=added)
            event = {"session": session.id, "labels_added": added, "reason": reason}
            tx.append(
                [
                    replace(
                        event_entry("session.labels", now_or_wall(self.clock), event),
                        session=session.id,
                    )
                ]
            )
        return state

    def trust(
        self,
        session: Session,
        text: str,
        *,
        source: str = "user",
        declared_by: Principal | None = None,
    ) -> None:
        """Remember `text` as trusted content of the session under `source` (the
        user's own request, by default), for argument provenance: a call's
        argument found in it has `source` in `context.provenance.<arg>`.

        `source` is a lowercase name (`[a-z][a-z0-9_-]*`), not "untrusted" nor
        starting with "tool". Raises ValueError for a bad source or a text
        that is not a string; recorded in the audit log (the source, the
        text's length, never the text, and `declared_by`: the principal whose
        request carried it, where a carrier knows one).
        """
        check_source(source)
        if not isinstance(text, str):
            raise ValueError(f"trusted content is a string, not {type(text).__name__}")
        with self.store.transaction() as tx:
            added = tx.remember(session.id, [Source(source, (), (text,))], limit=self.remember)
            event: dict[str, Any] = {"session": session.id, "source": source, "chars": len(text)}
            if declared_by is not None:
                event["declared_by"] = utf8(str(declared_by))
            tx.append(
                [
                    replace(
                        event_entry("session.trust", now_or_wall(self.clock), event),
                        session=session.id,
                    )
                ]
            )
        self._indexes.advance(session.id, added, 1)

    # -- calls --------------------------------------------------------------

    def call(
        self,
        principal: Principal,
        tool: str,
        args: Mapping[str, Any],
        session: Session,
        *,
        call_id: str | None = None,
    ) -> Any:
        """Decide and, if allowed, run one call.

        Returns the tool's result, a Refusal, or a ToolFailure if the tool
        raised (or its result could not be checked). A `call_id` (e.g. the
        model's tool-call id) runs at most once: a resend is refused. Nothing
        the tool raises escapes, except KeyboardInterrupt, which is re-raised
        after its outcome has been recorded.
        """
        in_loop = loop_running()
        if self.decision_timeout is None:
            authorized = authorize(self, principal, tool, args, session, in_loop, call_id)
        else:
            future = executor(self).submit(
                authorize, self, principal, tool, args, session, in_loop, call_id
            )
            try:
                authorized = future.result(timeout=self.decision_timeout)
            except concurrent.futures.TimeoutError:
                return timed_out(self, future, principal, tool, session)
        if isinstance(authorized, Refusal):
            return authorized
        return execute(self, principal, authorized, session)

    async def acall(
        self,
        principal: Principal,
        tool: str,
        args: Mapping[str, Any],
        session: Session,
        *,
        call_id: str | None = None,
    ) -> Any:
        """`call` for asyncio code: async tools are awaited, sync tools run in a worker
        thread; decisions and records are made off the event loop.

        If the caller is cancelled before the tool started, the call is
        recorded as never run (its reservations and approval given back);
        after, an async tool is recorded `cancelled`, and a sync tool runs to
        its end in its thread with its real outcome recorded.
        """
        future = executor(self).submit(
            authorize, self, principal, tool, args, session, False, call_id
        )
        try:
            authorized = await asyncio.wait_for(asyncio.wrap_future(future), self.decision_timeout)
        except TimeoutError:
            return timed_out(self, future, principal, tool, session)
        except asyncio.CancelledError:
            abandon(self, future, principal, session, {"reason": "cancelled before it ran"})
            raise
        if isinstance(authorized, Refusal):
            return authorized
        loop = asyncio.get_running_loop()
        if not authorized.tool.is_async:
            job = loop.run_in_executor(None, execute, self, principal, authorized, session)
            return await asyncio.shield(job)  # if cancelled, the thread records the real outcome
        started = time.perf_counter()
        end = functools.partial(finish, self, principal, authorized, session, started)
        try:
            result = authorized.tool.executor(**authorized.kwargs)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            outcome = "cancelled" if cancelled else None
            job = loop.run_in_executor(executor(self), functools.partial(end, exc, outcome=outcome))
            answer = await asyncio.shield(job)
            if cancelled or isinstance(exc, KeyboardInterrupt):
                raise
            return answer
        job = loop.run_in_executor(executor(self), end, None, result)
        return await asyncio.shield(job)

    def run_approved(self, approval_id: str, session: Session) -> Any:
        """Run an approved call exactly as it was approved, consuming the approval.

        It is the same as the agent retrying the identical call in its session.
        Raises ApprovalError if the approval is not approved and usable here,
        or if its arguments held masked values (only the agent's own retry,
        which supplies them, can run it then).
        """
        approval = self.approvals.get(approval_id)
        if approval.status != "approved":
            raise ApprovalError("not_pending", f"approval {approval_id} is {approval.status}")
        if approval.session != session.id:
            raise ApprovalError("not_found", f"approval {approval_id} is for another session")
        if approval.call_args is None:
            raise ApprovalError(
                "not_runnable",
                f"approval {approval_id} holds masked values; the agent's retry runs it",
            )
        args = thaw(approval.call_args.encode())
        return self.call(Principal.parse(approval.principal), approval.tool, args, session)

    def decide(
        self, principal: Principal, tool: str, args: Mapping[str, Any], session: Session
    ) -> Decision | Refusal:
        """What a call would get now, without executing or recording it (a dry run).

        Returns the allowing Decision, or the Refusal the call would get (with an
        empty `ref`). Approvals already granted are not consulted: a call that
        needs one answers `approval_required`.
        """
        try:
            engine = self._engine
            decision, value, now = self._evaluate(engine, principal, tool, args, session)
            if not decision.allowed:
                return Refusal("not_permitted", ref="", policy=cited(decision))
            owed = obligations(engine.bundle, decision, str(principal), tool, value, now)
            if owed.approval is not None:
                return Refusal("approval_required", ref="", policy=owed.policy)
            if owed.reservations and not self._would_fit(owed.reservations):
                return Refusal("limit_exceeded", ref="")
        except Unknown:
            return Refusal("unknown_tool", ref="")
        except ArgumentError as exc:
            return Refusal("invalid_arguments", ref="", detail=str(exc))
        except Exception:
            return Refusal("unavailable", ref="")
        return decision

    def evaluate(
        self, principal: Principal, tool: str, args: Mapping[str, Any], session: Session
    ) -> Decision:
        """The policy engine's decision for a call, before obligations, without running it.

        A diagnostic (what `warded check` shows behind a refusal). Raises
        LookupError for a tool this principal cannot see and ArgumentError for
        arguments the tool refuses.
        """
        return self._evaluate(self._engine, principal, tool, args, session)[0]

    def _evaluate(
        self,
        engine: Engine,
        principal: Principal,
        tool: str,
        args: Mapping[str, Any],
        session: Session,
    ) -> tuple[Decision, Any, float]:
        t = self._tools.get(tool) if isinstance(tool, str) else None
        if t is None or not engine.visible(principal, tool):
            raise Unknown("no tool by that name is available")
        now = instant(self.clock.now())
        frozen = canonical_json(t.prepare(args))
        value = thaw(frozen)
        problem = t.check(value)
        if problem:
            raise ArgumentError(problem)
        t.arguments(thaw(frozen))
        resource = resource_of(t, value, engine.bundle)
        scanners = self._input_scanners(engine)
        found = scan_arguments(scanners, t, value) if scanners else []
        state = self.store.session(session.id)
        context = context_of(self, engine, t, value, state, now, found)
        return checked(engine.decide(principal, tool, resource, context)), value, now

    def _input_scanners(self, engine: Engine) -> tuple[Scanner, ...]:
        """The gate's input scanners, plus a built-in one for every `context.scan`
        field the bundle declares that none of them covers (so every declared
        field is answered by a scanner of its name).

        The policy is the governance document: declaring `scan: { secrets: Bool }`
        in the schema is enough to get secrets scanned. Resolved once per bundle
        version; a built-in whose extra is missing fails the gate's construction
        or the reload, never a call.
        """
        cached = self._scanners.get(engine.version)
        if cached is not None:
            return cached
        declared: frozenset[str] = frozenset().union(*engine.bundle.scanned.values())
        missing = sorted(declared - {s.name for s in self.scanners})
        resolved = self.scanners + tuple(builtin_scanner(name) for name in missing)
        self._scanners[engine.version] = resolved
        return resolved

    def _would_fit(self, reservations: tuple[Reservation, ...]) -> bool:
        """Whether the reservations would fit now, read from the committed counters: a dry
        run takes no write transaction (no store lock; the call's own transaction is the
        authoritative check)."""
        totals: dict[tuple[str, int], Decimal] = {}
        for r in reservations:
            key = (r.key, r.window)
            if key not in totals:
                totals[key] = self.store.counter(r.key, r.window)
            totals[key] += r.amount
            if totals[key] > r.limit:
                return False
        return True
