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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast, overload

from warded.audit.record import AuditEntry, AuditRecord, new_id
from warded.canonical import args_digest, canonical_json, thaw
from warded.clock import Clock, SystemClock
from warded.errors import (
    ApprovalError,
    ArgumentError,
    BundleError,
    Problem,
    RefusalCode,
    ViewError,
    WardedError,
)
from warded.flagged import SCANNER as FLAGGING
from warded.flagged import flagged_text
from warded.keys import deployment_key
from warded.links import links, listed
from warded.model import (
    Decision,
    Mode,
    Principal,
    Refusal,
    Session,
    SessionState,
    Source,
    ToolFailure,
    ToolSpec,
)
from warded.obligations.approvals import DEFAULT_TTL, Approval, binding_digest
from warded.obligations.desk import (
    ApprovalDesk,
    approved_for,
    give_back,
    pending_for,
    transition,
)
from warded.obligations.limits import Reservation
from warded.obligations.plan import Obligations, obligations
from warded.outputs import masked as mask_result
from warded.outputs import view
from warded.policy.bundle import PolicyBundle
from warded.policy.compiled import Recheck
from warded.policy.engine import Engine
from warded.policy.selfcheck import Disagreement
from warded.policy.source import BundleFiles, DirectorySource, PolicySource
from warded.provenance import APPROVED, INJECTED, LIMIT, Indexes, check_source, leaves, strings
from warded.redaction import DefaultRedactor, Redactor, Secrets, mask_by_name
from warded.request import build_context, instant, printable, resource_of, utf8
from warded.scanners.base import (
    Finding,
    Scanner,
    builtin_scanner,
    found_text,
    mask_text,
    scan_value,
    summary,
    text_at,
)
from warded.scanners.base import redact as mask_findings
from warded.store import MemoryStore, Store
from warded.tools import (
    ResourceRule,
    Tool,
    describe,
    make_tool,
    schema_from_signature,
    typed_arguments,
)

log = logging.getLogger("warded")
UNTRUSTED = "untrusted"  # the label an opaque tool's result gives the session
F = TypeVar("F", bound=Callable[..., Any])

ATTEMPTS = 5  # decisions per call when the bundle or the session's labels keep changing
DECISION_THREADS = 32


@dataclass(frozen=True, slots=True)
class _Decided:
    """One call as decided, before its record is committed."""

    entry: AuditEntry
    shadows: tuple[AuditEntry, ...]
    decision: Decision
    owed: Obligations | None  # None: denied
    tool: Tool
    frozen: bytes
    kwargs: dict[str, Any]
    digest: str
    resource: Mapping[str, str]
    session: str
    labels: frozenset[str]  # the session's labels the decision saw
    now: float
    call_id: str | None
    secrets: Secrets
    value: Any  # the frozen arguments, thawed
    masked: Any  # ... with what the input scanners found masked


@dataclass(frozen=True, slots=True)
class _Authorized:
    call: str
    tool: Tool
    kwargs: dict[str, Any]
    digest: str
    decision: Decision
    reservations: tuple[Reservation, ...]
    redact: frozenset[str]  # output scanners whose findings the determining permits mask
    approval: str | None  # the approval this call consumed
    secrets: Secrets
    approved: tuple[str, ...] = ()  # an approved call's strings as the approvers saw them


class _Unknown(LookupError):
    """The tool is not registered, or this principal can never be permitted it."""


class _Stale(Exception):
    """The bundle or the session's labels changed after the decision: decide again.

    `live` is the version the store says is live for every node, if this gate is
    not on it (another node pushed a bundle)."""

    def __init__(self, live: str | None = None) -> None:
        self.live = live


class _NotRun(Exception):
    """The tool's body never started (its coroutine could not be run)."""


class _Held(Exception):
    """Raised inside a store transaction to roll it back and refuse the call."""

    def __init__(self, code: RefusalCode, reason: str, detail: Mapping[str, Any] | None = None):
        self.code = code
        self.reason = reason
        self.detail = detail or {}


def _for_tools(scanner: Scanner, names: tuple[str, ...]) -> Scanner:
    """`scanner.for_tools(names)` if the scanner has that method, else the scanner."""
    for_tools = getattr(scanner, "for_tools", None)
    return scanner if for_tools is None else cast(Scanner, for_tools(names))


class Gate:
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
        the version they were decided under). Open approvals bound to another
        version are voided.
        """
        bundle = self._load(new)
        engine = self._new_engine(bundle)
        self._input_scanners(engine)
        now = self._now_or_wall()
        with self._reload_lock:
            old = self._engine.version
            try:
                with self.store.transaction() as tx:
                    # swapped inside a store transaction: ordered with every decision's
                    # transaction, each of which checks the version it was decided on
                    self._engine = engine
                    tx.append([_event("reload", now, {"from": old, "to": bundle.version})])
                    self.approvals.void(bundle.version, now, tx)
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
        self._append([_event("policy.incident", self._now_or_wall(), detail)])

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

    @overload
    def tool(self, fn: F) -> F: ...

    @overload
    def tool(
        self,
        fn: None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        effect: str = "read",
        resource: ResourceRule | None = None,
        sensitive: Sequence[str] = (),
        labels: Sequence[str] = (),
        atomic: bool = False,
        opaque: bool = False,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        effect: str = "read",
        resource: ResourceRule | None = None,
        sensitive: Sequence[str] = (),
        labels: Sequence[str] = (),
        atomic: bool = False,
        opaque: bool = False,
    ) -> F | Callable[[F], F]:
        """Register a function as a tool; its argument schema comes from its type hints.

        Parameters typed as pydantic models, enums, dates and the like receive
        instances validated from the checked arguments.
        """

        def register(f: F) -> F:
            self._add(
                make_tool(
                    name or f.__name__,
                    schema_from_signature(f),
                    f,
                    description=describe(f) if description is None else description,
                    effect=effect,
                    resource=resource,
                    sensitive=tuple(sensitive),
                    labels=tuple(labels),
                    atomic=atomic,
                    opaque=opaque,
                    convert=typed_arguments(f),
                )
            )
            return f

        return register(fn) if fn is not None else register

    def register(
        self,
        name: str,
        parameters: Mapping[str, Any],
        executor: Callable[..., Any],
        *,
        description: str = "",
        effect: str = "read",
        resource: ResourceRule | None = None,
        sensitive: Sequence[str] = (),
        labels: Sequence[str] = (),
        atomic: bool = False,
        opaque: bool = False,
    ) -> Tool:
        """Register a tool described by a name and a JSON Schema, run by `executor(**args)`.

        `labels` are added to the calling session each time the tool runs.
        `atomic=True` declares that nothing happened when the tool raised, so
        its budget reservations are given back (by default they are kept).
        `opaque=True` declares a result the gate cannot view (`warded.outputs`):
        it is never scanned or masked, and labels the session `untrusted`.
        """
        return self._add(
            make_tool(
                name,
                parameters,
                executor,
                description=description,
                effect=effect,
                resource=resource,
                sensitive=tuple(sensitive),
                labels=tuple(labels),
                atomic=atomic,
                opaque=opaque,
            )
        )

    def _add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise WardedError(f"tool {tool.name!r} is already registered")
        self._tools = {**self._tools, tool.name: tool}
        return tool

    def unregister(self, name: str) -> None:
        """Remove a tool: from now on it is unknown to listings and calls.

        Calls already authorized finish. The registry is swapped whole, so a
        listing in progress never sees it change under it.
        """
        self._tools = {n: t for n, t in self._tools.items() if n != name}

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
                [replace(_event("session.labels", self._now_or_wall(), event), session=session.id)]
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
                [replace(_event("session.trust", self._now_or_wall(), event), session=session.id)]
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
        in_loop = _loop_running()
        if self.decision_timeout is None:
            authorized = self._authorize(principal, tool, args, session, in_loop, call_id)
        else:
            future = self._executor().submit(
                self._authorize, principal, tool, args, session, in_loop, call_id
            )
            try:
                authorized = future.result(timeout=self.decision_timeout)
            except concurrent.futures.TimeoutError:
                return self._timed_out(future, principal, tool, session)
        if isinstance(authorized, Refusal):
            return authorized
        return self._execute(principal, authorized, session)

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
        future = self._executor().submit(
            self._authorize, principal, tool, args, session, False, call_id
        )
        try:
            authorized = await asyncio.wait_for(asyncio.wrap_future(future), self.decision_timeout)
        except TimeoutError:
            return self._timed_out(future, principal, tool, session)
        except asyncio.CancelledError:
            self._abandon(future, principal, session, {"reason": "cancelled before it ran"})
            raise
        if isinstance(authorized, Refusal):
            return authorized
        loop = asyncio.get_running_loop()
        if not authorized.tool.is_async:
            job = loop.run_in_executor(None, self._execute, principal, authorized, session)
            return await asyncio.shield(job)  # if cancelled, the thread records the real outcome
        started = time.perf_counter()
        finish = functools.partial(self._finish, principal, authorized, session, started)
        try:
            result = authorized.tool.executor(**authorized.kwargs)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            outcome = "cancelled" if cancelled else None
            job = loop.run_in_executor(
                self._executor(), functools.partial(finish, exc, outcome=outcome)
            )
            answer = await asyncio.shield(job)
            if cancelled or isinstance(exc, KeyboardInterrupt):
                raise
            return answer
        job = loop.run_in_executor(self._executor(), finish, None, result)
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
                return Refusal("not_permitted", ref="", policy=_cited(decision))
            owed = obligations(engine.bundle, decision, str(principal), tool, value, now)
            if owed.approval is not None:
                return Refusal("approval_required", ref="", policy=owed.policy)
            if owed.reservations and not self._would_fit(owed.reservations):
                return Refusal("limit_exceeded", ref="")
        except _Unknown:
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
            raise _Unknown("no tool by that name is available")
        now = instant(self.clock.now())
        frozen = canonical_json(t.prepare(args))
        value = thaw(frozen)
        problem = t.check(value)
        if problem:
            raise ArgumentError(problem)
        t.arguments(thaw(frozen))
        resource = resource_of(t, value, engine.bundle)
        scanners = self._input_scanners(engine)
        found = scan_value(scanners, value) if scanners else []
        state = self.store.session(session.id)
        context = self._context(engine, t, value, state, now, found)
        return _checked(engine.decide(principal, tool, resource, context)), value, now

    def _context(
        self,
        engine: Engine,
        tool: Tool,
        value: Any,
        state: SessionState,
        now: float,
        found: list[Finding],
    ) -> dict[str, Any]:
        """The Cedar context, with `scan` where the tool's action declares it:
        per declared field, whether the input scanner of that name found anything;
        and `provenance` where it declares that: per declared argument, the
        sources its value can be found in (`warded.provenance`); and `links`
        where it declares that: per declared argument, how many links it
        carries (`warded.links`) and the sources all of them can be found in."""
        context = build_context(tool.to_cedar(value), state, now)
        fields = engine.bundle.scanned.get(tool.name)
        if fields:
            context["scan"] = summary(found, fields)
        names = engine.bundle.provenance.get(tool.name)
        if names:
            context["provenance"] = self._indexes.provenance(
                state.id,
                state.remembered,
                lambda after: self.store.sources(state.id, after),
                value,
                names,
            )
        texts = engine.bundle.links.get(tool.name)
        if texts:  # the links inside free text (`warded.links`): their count and sources
            inside = {n: [x for s in strings(value.get(n)) for x in links(s)] for n in texts}
            sources = self._indexes.provenance(
                state.id,
                state.remembered,
                lambda after: self.store.sources(state.id, after),
                inside,
                texts,
            )
            context["links"] = {
                n: {"count": len(inside[n]), "provenance": sources[n]} for n in texts
            }
        return context

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

    # -- the decision ---------------------------------------------------------

    def _authorize(
        self,
        principal: Principal,
        name: str,
        args: Mapping[str, Any],
        session: Session,
        in_loop: bool,
        call_id: str | None,
    ) -> _Authorized | Refusal:
        started = time.perf_counter()
        behind = None
        for _ in range(ATTEMPTS):
            decided = self._decide_once(principal, name, args, session, in_loop, call_id, started)
            if not isinstance(decided, _Decided):
                return decided
            try:
                return self._commit(decided)
            except _Stale as stale:
                if stale.live is not None and not self._catch_up(stale.live):
                    behind = stale.live
                    break
        base = self._base(self._engine, principal, name, session, call_id)
        reason = "the policy bundle or the session's labels changed during every attempt"
        if behind is not None:
            reason = f"bundle {behind} is live and this gate cannot load it"
        return self._refuse("unavailable", base, self._now_or_wall(), started, reasons=(reason,))

    def _catch_up(self, live: str) -> bool:
        """The store says `live` is the deployment's bundle (`warded policy push`): reload
        from the policy source, once for all callers; whether this gate is now on it."""
        with self._catching_up:
            if self._engine.version != live and self._source is not None:
                try:
                    self.reload()
                except BundleError as exc:
                    log.error("cannot load the live bundle %s: %s", live, exc)
            return self._engine.version == live

    def _base(
        self, engine: Engine, principal: Principal, name: object, session: Session, call_id: object
    ) -> dict[str, Any]:
        """The fields every decision record of a call has; the caller's call id (an MCP
        request id, a model's tool-call id) is kept in its detail."""
        base: dict[str, Any] = {
            "call": new_id(),
            "principal": utf8(str(principal)),
            "session": printable(getattr(session, "id", None)),
            "tool": printable(name),
            "bundle_version": engine.version,
        }
        if call_id is not None:
            base["detail"] = {"call_id": printable(call_id)}
        return base

    def _decide_once(
        self,
        principal: Principal,
        name: str,
        args: Mapping[str, Any],
        session: Session,
        in_loop: bool,
        call_id: str | None,
        started: float,
    ) -> _Decided | Refusal:
        """Resolve, freeze, validate, build the request and decide; refusals are recorded."""
        engine = self._engine
        shadow = self._shadow
        base = self._base(engine, principal, name, session, call_id)
        digest: str | None = None
        redacted: Any = None
        secrets = Secrets()
        try:
            now = instant(self.clock.now())
            tool = self._tools.get(name) if isinstance(name, str) else None
            if tool is None or not engine.visible(principal, name):
                base["tool"] = self._masked_name(engine, base["tool"])
                return self._refuse("unknown_tool", base, now, started)
            frozen = canonical_json(tool.prepare(args))
            digest = args_digest(frozen, self._key)
            value = thaw(frozen)
            scanners = self._input_scanners(engine)
            found = scan_value(scanners, value) if scanners else []
            secrets = Secrets.of_call(tool.sensitive, value, (found_text(value, f) for f in found))
            masked = mask_findings(value, found) if found else value
            redacted = self.redactor.redact(tool.sensitive, masked)
            problem = tool.check(value)
            if problem is not None:
                return self._refuse(
                    "invalid_arguments", base, now, started, digest, redacted, detail=problem
                )
            kwargs = tool.arguments(thaw(frozen))
            if tool.is_async and in_loop:
                reason = "async tool called with call() inside a running event loop; use acall()"
                return self._refuse(
                    "unavailable", base, now, started, digest, redacted, reasons=(reason,)
                )
            state = self.store.session(session.id)
            resource = resource_of(tool, value, engine.bundle)
            context = self._context(engine, tool, value, state, now, found)
            decision = _checked(engine.decide(principal, name, resource, context))
            shadow_decision = _shadow_decide(shadow, principal, name, resource, context)
            owed = (
                obligations(engine.bundle, decision, base["principal"], name, value, now)
                if decision.allowed
                else None
            )
            if decision.errors and secrets:
                decision = replace(decision, errors=secrets.mask_all(decision.errors))
            cedar_args = mask_findings(context["args"], found) if found else context["args"]
            request = {
                "resource": resource,
                "context": {**context, "args": self.redactor.redact(tool.sensitive, cedar_args)},
            }
            for key in ("provenance", "links"):
                if key in context:
                    base["detail"] = {**base.get("detail", {}), key: context[key]}
            if "links" in context and owed is not None and owed.approval is not None:
                base["detail"]["links_found"] = listed(  # each link and its sources, for approvers
                    engine.bundle.links[tool.name],
                    value,
                    mask_by_name(tool.sensitive, masked),
                    functools.partial(
                        self._indexes.provenance,
                        state.id,
                        state.remembered,
                        lambda after: self.store.sources(state.id, after),
                    ),
                )
            entry = AuditEntry(
                kind="decision",
                time=now,
                args_digest=digest,
                args=redacted,
                decision="allow" if decision.allowed else "deny",
                code=None if decision.allowed else "not_permitted",
                policies=decision.policies,
                reasons=decision.errors,
                latency_us=_us(started),
                request=request,
                **base,
            )
            return _Decided(
                entry=entry,
                shadows=_shadow_entries(entry, shadow_decision),
                decision=decision,
                owed=owed,
                tool=tool,
                frozen=frozen,
                kwargs=kwargs,
                digest=digest,
                resource=resource,
                session=session.id,
                labels=state.labels,
                now=now,
                call_id=call_id_text(call_id),
                secrets=secrets,
                value=value,
                masked=masked,
            )
        except ArgumentError as exc:
            now = self._now_or_wall()
            detail = secrets.mask(str(exc))
            return self._refuse(
                "invalid_arguments", base, now, started, digest, redacted, detail=detail
            )
        except Exception as exc:
            now = self._now_or_wall()
            reason = secrets.mask(f"internal error before decision: {type(exc).__name__}: {exc}")
            return self._refuse(
                "unavailable", base, now, started, digest, redacted, reasons=(reason,)
            )

    def _masked_name(self, engine: Engine, name: str) -> str:
        """A requested tool name as the log keeps it: what the input scanners find masked."""
        try:
            scanners = self._input_scanners(engine)
            found = [f for s in scanners for f in s.scan(name)]
            return mask_text(name, found) if found else name
        except Exception:
            return "<tool name not scannable>"

    def _commit(self, d: _Decided) -> _Authorized | Refusal:
        """Record the decision with its obligations in one transaction; raise _Stale if
        the bundle or the session's labels changed since it was made."""
        entry = d.entry
        owed = d.owed
        try:
            with self.store.transaction() as tx:
                live = tx.live_version()
                if live is not None and live != d.decision.bundle_version:
                    raise _Stale(live if live != self._engine.version else None)
                # Sources remembered meanwhile need no new decision: a result reaches
                # the model only after its outcome (and what it remembers) committed,
                # so whatever the model could have taken this call's values from was
                # remembered before the decision read the session.
                if (
                    self._engine.version != d.decision.bundle_version
                    or tx.session(d.session).labels != d.labels
                ):
                    raise _Stale
                tx.update_session(d.session, calls=1)
                if owed is None:
                    _sealed(tx.append([entry, *d.shadows]), [entry, *d.shadows])
                    return Refusal("not_permitted", ref=entry.id, policy=_cited(d.decision))
                consumed = None
                approved_strings: tuple[str, ...] = ()
                if owed.approval is not None:
                    bound = binding_digest(
                        entry.principal or "",
                        d.tool.name,
                        d.digest,
                        d.resource,
                        d.session,
                        d.decision.bundle_version,
                    )
                    approved = approved_for(tx, bound, d.now)
                    if approved is None:
                        pending = pending_for(tx, self._draft(d, bound), d.now)
                        held = replace(
                            entry,
                            decision="deny",
                            code="approval_required",
                            detail={
                                **entry.detail,
                                "approval": pending.id,
                                "group": pending.group,
                            },
                        )
                        _sealed(tx.append([held, *d.shadows]), [held, *d.shadows])
                        return Refusal(
                            "approval_required",
                            ref=entry.id,
                            policy=owed.policy,
                            approval_id=pending.id,
                        )
                    transition(tx, approved.with_status("consumed"), d.now)
                    consumed = approved.id
                    shown = mask_by_name(d.tool.sensitive, d.masked)
                    values = list(shown.values()) if isinstance(shown, Mapping) else shown
                    approved_strings = tuple(leaves(values))
                    entry = replace(
                        entry,
                        detail={
                            **entry.detail,
                            "approval": approved.id,
                            "approved_by": approved.decided_by,
                        },
                    )
                if d.call_id is not None and not tx.claim(f"{entry.principal}|{d.call_id}"):
                    reused = {"reused_call_id": True}
                    raise _Held("not_permitted", "call id already used", reused)
                for reservation in owed.reservations:
                    if not tx.reserve(reservation):
                        raise _Held("limit_exceeded", f"limit {reservation.key} reached")
                if owed.reservations:
                    reserved = [r.to_json() for r in owed.reservations]
                    entry = replace(entry, detail={**entry.detail, "reservations": reserved})
                _sealed(tx.append([entry, *d.shadows]), [entry, *d.shadows])
        except _Stale:
            raise
        except _Held as held:
            refused = replace(
                entry,
                decision="deny",
                code=held.code,
                reasons=(held.reason,),
                detail={**entry.detail, **held.detail},
            )
            self._append([refused, *d.shadows], session=d.session)
            return Refusal(held.code, ref=entry.id)
        except Exception as exc:
            reason = d.secrets.mask(f"decision not recorded: {type(exc).__name__}: {exc}")
            log.error("call %s refused: the decision could not be recorded", entry.call)
            self._append([replace(entry, decision="deny", code="unavailable", reasons=(reason,))])
            return Refusal("unavailable", ref=entry.id)
        return _Authorized(
            entry.call,
            d.tool,
            d.kwargs,
            d.digest,
            d.decision,
            owed.reservations,
            owed.redact,
            consumed,
            d.secrets,
            approved_strings,
        )

    def _draft(self, d: _Decided, bound: str) -> Approval:
        """A new approval request for this exact call: approvers see its arguments with
        sensitive values and scanner findings masked (never cut); the exact arguments
        are kept only when nothing had to be masked."""
        assert d.owed is not None
        shown = mask_by_name(d.tool.sensitive, d.masked)
        return Approval(
            id=new_id(),
            digest=bound,
            call=d.entry.call,
            principal=d.entry.principal or "",
            tool=d.tool.name,
            args=canonical_json(shown).decode(),
            args_digest=d.digest,
            resource=dict(d.resource),
            session=d.session,
            bundle_version=d.decision.bundle_version,
            group=d.owed.approval or "",
            policy=d.owed.policy or "",
            created=d.now,
            expires=d.now + self.approval_ttl,
            call_args=d.frozen.decode() if shown == d.value else None,
        )

    def _refuse(
        self,
        code: RefusalCode,
        base: Mapping[str, Any],
        now: float,
        started: float,
        digest: str | None = None,
        args: Any = None,
        *,
        detail: str | None = None,
        reasons: tuple[str, ...] = (),
    ) -> Refusal:
        entry = AuditEntry(
            kind="decision",
            time=now,
            args_digest=digest,
            args=args,
            decision="deny",
            code=code,
            reasons=reasons + ((detail,) if detail else ()),
            latency_us=_us(started),
            **base,
        )
        self._append([entry])
        return Refusal(code, ref=entry.id, detail=detail)

    # -- execution and outcome ------------------------------------------------

    def _execute(self, principal: Principal, authorized: _Authorized, session: Session) -> Any:
        """Run an authorized call and record its outcome; never raises but KeyboardInterrupt."""
        started = time.perf_counter()
        try:
            result = _awaited(authorized.tool.executor(**authorized.kwargs))
        except BaseException as exc:
            answer = self._finish(principal, authorized, session, started, exc)
            if isinstance(exc, KeyboardInterrupt):
                raise
            return answer
        return self._finish(principal, authorized, session, started, None, result)

    def _finish(
        self,
        principal: Principal,
        authorized: _Authorized,
        session: Session,
        started: float,
        error: BaseException | None,
        result: Any = None,
        *,
        outcome: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Any:
        """Record the outcome, apply the tool's labels, scan and mask the result.

        A call that never ran gives back its reservations and approval; a tool
        that raised gives back its budget only if it is atomic. An output
        scanner that fails labels the session as if it had found something; if
        its findings were to be masked, the result is withheld. If the outcome
        (and so the labels) cannot be recorded, a result is withheld too.
        """
        if isinstance(error, _NotRun):
            outcome, error = "not_run", None
            detail = {**(detail or {}), "reason": "the tool's coroutine could not be run"}
        notes: dict[str, Any] = dict(detail or {})
        labels = set(authorized.tool.labels)
        withheld = False
        ran = error is None and outcome is None
        seen: Any = None  # the result's view as the model receives it, to remember
        flagged: tuple[str, ...] | None = ()  # its flagged regions (None: all of it)
        unseen = False  # the model receives what cannot be remembered
        if ran and authorized.tool.opaque:
            labels.add(UNTRUSTED)  # what it returned cannot be looked at
            unseen = True
        elif ran and self.output_scanners:
            result, found, scanned, seen, flagged = self._scan_output(authorized, result)
            labels |= found
            notes.update(scanned)
            withheld = "withheld" in scanned
        elif ran:
            try:
                seen = view(result)
            except Exception:
                unseen = True
        if error is not None:
            interrupted = isinstance(error, KeyboardInterrupt)
            outcome = outcome or ("interrupted" if interrupted else "error")
            notes.update(error=type(error).__name__, message=self._error_text(authorized, error))
        never_ran = outcome == "not_run"
        failed = error is not None  # ran, and raised (or was cancelled or interrupted)
        released = [
            r
            for r in authorized.reservations
            if never_ran or (failed and authorized.tool.atomic and r.kind == "budget")
        ]
        sources = []
        strings = () if seen is None or withheld else tuple(leaves(seen))
        if strings:
            # detection only adds: the flagged regions (`warded.flagged`) are remembered
            # again, after the result (so they outlive it), with one more label; a
            # result whose scan raised is flagged whole
            name = f"tool:{authorized.tool.name}"
            whole = labels | {INJECTED} if flagged is None else labels
            sources.append(Source(name, tuple(sorted(whole)), strings))
            if flagged:
                sources.append(Source(name, tuple(sorted(labels | {INJECTED})), flagged))
        if authorized.approved and not never_ran:
            sources.append(Source(APPROVED, (), authorized.approved))
        remember = bool(sources) or unseen
        if labels:
            notes["labels_added"] = sorted(labels)
        if released:
            notes["released"] = [r.to_json() for r in released]
        now = self._now_or_wall()
        entry = AuditEntry(
            kind="outcome",
            call=authorized.call,
            time=now,
            principal=utf8(str(principal)),
            tool=authorized.tool.name,
            args_digest=authorized.digest,
            bundle_version=authorized.decision.bundle_version,
            outcome=outcome or "ok",
            latency_us=_us(started),
            detail=notes,
            session=session.id,
        )
        recorded = False
        added = None
        for attempt in (entry, entry.reduced("the full outcome could not be sealed")):
            try:
                with self.store.transaction(durable=bool(labels)) as tx:
                    tx.append([attempt])
                    if labels:
                        tx.update_session(session.id, labels=labels)
                    if remember:
                        added = tx.remember(
                            session.id, sources, limit=self.remember, overflowed=unseen
                        )
                    for reservation in released:
                        tx.release(reservation)
                    if never_ran and authorized.approval is not None:
                        give_back(tx, authorized.approval, now, "the call never ran")
                recorded = True
                break
            except Exception as exc:
                log.error("outcome of call %s not recorded: %s", entry.call, type(exc).__name__)
        if added is not None and recorded:
            self._indexes.advance(session.id, added, len(sources))
        # an unlabelled result that could not be remembered is returned: its values
        # only lose the tool's name (never more trusted); a labelled one is withheld
        if error is not None or never_ran or withheld or ((labels or unseen) and not recorded):
            return ToolFailure(ref=entry.id)
        return result

    def _scan_output(
        self, authorized: _Authorized, result: Any
    ) -> tuple[Any, set[str], dict[str, Any], Any, tuple[str, ...] | None]:
        """(result masked per @redact, labels from findings, notes for the outcome record,
        its view as masked, the text of its flagged regions).

        Any result is scanned through its JSON view (`warded.outputs`); one that
        has none is withheld. The flagged regions are those of the findings of
        an output scanner named `injection` (`warded.flagged`), as masked; if
        the scan raised and such a scanner is among the output scanners, they
        are None: the whole result is treated as flagged (fail closed).
        """
        try:
            seen = view(result)
        except ViewError as exc:
            return None, set(), {"withheld": f"the result has no JSON view: {exc}"}, None, ()
        except Exception as exc:  # the result's own code (a view hook, a mapping) raised
            withheld = {"withheld": f"viewing the result raised {type(exc).__name__}"}
            return None, set(), withheld, None, ()
        try:
            found = scan_value(self._tool_scanners(), seen)
            labels = {f.scanner for f in found}
            hiding = [f for f in found if f.scanner in authorized.redact]
            notes: dict[str, Any] = {}
            if found:
                where = [{"scanner": f.scanner, "kind": f.kind, "path": f.path} for f in found]
                notes = {"findings": where, "redacted": sorted(authorized.redact)}
            flagged = _flagged(seen, found, hiding)
            if not hiding:
                return result, labels, notes, seen, flagged
            masked = mask_findings(seen, hiding)
            return mask_result(result, hiding), labels, notes, masked, flagged
        except Exception as exc:
            # fail closed: as if every output scanner had found something
            labels = {str(getattr(s, "name", "scanner")) for s in self.output_scanners}
            notes = {"scan_error": type(exc).__name__}
            if authorized.redact:
                notes["withheld"] = "the result could not be scanned for what must be masked"
            regions = None if FLAGGING in labels else ()
            return result, labels, notes, seen, regions

    def _tool_scanners(self) -> tuple[Scanner, ...]:
        """The output scanners, each told the names of the tools registered on this gate.

        A scanner with a `for_tools(names)` method is replaced by what that returns
        (the injection scanner reads a tool's name, or an order to do what a tool
        does, written in data); the others are used as they are. The registered
        tools, not those the caller may see: the registry is the same for every
        caller, and a tool hidden from a session (say, once it is untrusted) is
        still one that injected text may try to reach. Built again only when the
        registry (swapped whole on every change) or the output scanners change.
        """
        registry, scanners = self._tools, self.output_scanners
        told = self._told
        if told is not None and told[0] is registry and told[1] is scanners:
            return told[2]
        names = tuple(registry)
        made = tuple(_for_tools(s, names) for s in scanners)
        self._told = (registry, scanners, made)
        return made

    def _error_text(self, authorized: _Authorized, error: BaseException) -> str:
        """A tool's error message as the log keeps it: the call's secrets masked, and
        whatever the input scanners find in it."""
        try:
            text = authorized.secrets.mask(str(error)[:500])
            scanners = self._input_scanners(self._engine)
            found = [f for s in scanners for f in s.scan(text)]
            return mask_text(text, found) if found else text
        except Exception:
            return "<message not readable>"

    def _append(self, entries: list[AuditEntry], session: str | None = None) -> None:
        """Append records (counting a decided call in its session); if they cannot be
        sealed in full, reduced ones are written instead, so no refusal's `ref` dangles."""
        attempt = entries
        for _ in range(2):
            try:
                with self.store.transaction() as tx:
                    if session is not None:
                        tx.update_session(session, calls=1)
                    _sealed(tx.append(attempt), attempt)
                return
            except Exception as exc:
                reason = f"the full record could not be sealed ({type(exc).__name__})"
                log.error("audit append failed: %s", type(exc).__name__)
                attempt = [e.reduced(reason) for e in entries]

    def _now_or_wall(self) -> float:
        try:
            return instant(self.clock.now())
        except Exception:
            return time.time()

    # -- decision_timeout and cancellation ------------------------------------

    def _timed_out(
        self,
        future: concurrent.futures.Future[_Authorized | Refusal],
        principal: Principal,
        name: str,
        session: Session,
    ) -> Refusal:
        """Refuse now; if the decision completes later, record that the call never ran."""
        ref = new_id()
        self._abandon(
            future, principal, session, {"reason": "decision timed out", "timeout_ref": ref}
        )
        entry = AuditEntry(
            kind="decision",
            id=ref,
            call=new_id(),
            time=time.time(),
            principal=utf8(str(principal)),
            session=printable(getattr(session, "id", None)),
            tool=printable(name),
            decision="deny",
            code="unavailable",
            reasons=(f"decision timed out after {self.decision_timeout}s",),
            bundle_version=self._engine.version,
        )
        self._executor().submit(self._append, [entry])  # never wait on a hung store
        return Refusal("unavailable", ref=ref)

    def _abandon(
        self,
        future: concurrent.futures.Future[_Authorized | Refusal],
        principal: Principal,
        session: Session,
        detail: Mapping[str, Any],
    ) -> None:
        """When a decision nobody waits for any more completes as authorized, record that
        the call never ran and give back what it took."""

        def late(f: concurrent.futures.Future[_Authorized | Refusal]) -> None:
            done = None if f.cancelled() or f.exception() else f.result()
            if isinstance(done, _Authorized):
                started = time.perf_counter()
                self._finish(
                    principal, done, session, started, None, outcome="not_run", detail=detail
                )

        future.add_done_callback(late)

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            with self._reload_lock:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        DECISION_THREADS, thread_name_prefix="warded-decide"
                    )
        return self._pool


def call_id_text(call_id: object) -> str | None:
    """A caller's call id as the log keeps it."""
    return None if call_id is None else printable(call_id)


def _awaited(result: Any) -> Any:
    """A tool's result; an awaitable is run to completion (there is no running loop:
    `call()` refuses async tools inside one before deciding)."""
    if not inspect.isawaitable(result):
        return result
    if _loop_running():
        if inspect.iscoroutine(result):
            result.close()
        raise _NotRun("an awaitable result inside a running event loop")

    async def wait() -> Any:
        return await result

    return asyncio.run(wait())


def _event(event: str, now: float, detail: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(kind="event", call=new_id(), time=now, detail={"event": event, **detail})


def _cited(decision: Decision) -> str | None:
    """The policy a refusal cites: the first determining one, unless the engine erred."""
    return decision.policies[0] if decision.policies and not decision.errors else None


def _shadow_decide(
    shadow: Engine | None,
    principal: Principal,
    name: str,
    resource: Mapping[str, str],
    context: Mapping[str, Any],
) -> Decision | None:
    if shadow is None:
        return None
    try:
        return _checked(shadow.decide(principal, name, resource, context))
    except Exception as exc:
        return Decision(
            False, (), (f"shadow engine error: {type(exc).__name__}",), shadow.version, "shadow"
        )


def _shadow_entries(entry: AuditEntry, shadow: Decision | None) -> tuple[AuditEntry, ...]:
    if shadow is None:
        return ()
    return (
        replace(
            entry,
            id=new_id(),
            decision="allow" if shadow.allowed else "deny",
            code=None,
            policies=shadow.policies,
            reasons=shadow.errors,
            mode="shadow",
            bundle_version=shadow.bundle_version,
        ),
    )


def _checked(decision: object) -> Decision:
    """An engine's answer, if it is a well-formed Decision; anything else is an error."""
    well_formed = (
        type(decision) is Decision
        and type(decision.allowed) is bool
        and isinstance(decision.policies, tuple)
        and all(type(p) is str for p in decision.policies)
        and isinstance(decision.errors, tuple)
        and all(type(e) is str for e in decision.errors)
        and type(decision.bundle_version) is str
    )
    if not well_formed:
        raise TypeError(f"policy engine answered a malformed {type(decision).__name__}")
    assert isinstance(decision, Decision)
    if decision.allowed and decision.errors:
        return replace(decision, allowed=False)
    return decision


def _sealed(records: object, entries: Sequence[AuditEntry]) -> None:
    """Raise unless the store answered with one sealed record per entry, in order."""
    if not isinstance(records, list) or len(records) != len(entries):
        raise TypeError("audit store did not return the sealed records")
    for record, entry in zip(records, entries, strict=True):
        if not isinstance(record, AuditRecord) or f'"id":"{entry.id}"'.encode() not in record.raw:
            raise TypeError("audit store returned records that are not the ones appended")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _us(started: float) -> int:
    return int((time.perf_counter() - started) * 1_000_000)


def _flagged(seen: Any, found: Sequence[Finding], hiding: Sequence[Finding]) -> tuple[str, ...]:
    """The text of the flagged regions (`warded.flagged`) of a scanned result's view."""
    by_path: dict[str, list[Finding]] = {}
    for f in found:
        if f.scanner == FLAGGING:
            by_path.setdefault(f.path, []).append(f)
    out: list[str] = []
    for path, findings in by_path.items():
        text = text_at(seen, path)
        masked = [f for f in hiding if f.path == path]
        out.extend(flagged_text(text, findings, masked))
    return tuple(out)
