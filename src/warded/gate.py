"""The gate: lists visible tools, decides every call, audits before acting, executes.

One path per call (DESIGN.md, "The request lifecycle"):
resolve → freeze → validate → build the request → decide → apply obligations
and record the decision (one store transaction) → execute → record the
outcome. Every failure before execution is a refusal, never an exception, and
the tool does not run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, overload

from warded.audit.record import AuditEntry, AuditRecord, new_id
from warded.canonical import args_digest, canonical_json, thaw
from warded.clock import Clock, SystemClock
from warded.errors import (
    ApprovalError,
    ArgumentError,
    BundleError,
    Problem,
    RefusalCode,
    WardedError,
)
from warded.model import Decision, Principal, Refusal, Session, SessionState, ToolFailure, ToolSpec
from warded.obligations.approvals import DEFAULT_TTL, Approval, binding_digest
from warded.obligations.desk import ApprovalDesk, approved_for, give_back, pending_for
from warded.obligations.limits import Reservation
from warded.obligations.plan import Obligations, obligations
from warded.policy.bundle import PolicyBundle
from warded.policy.engine import Engine
from warded.policy.source import BundleFiles, DirectorySource, PolicySource
from warded.policy.values import to_cedar
from warded.redaction import DefaultRedactor, Redactor, mask_strings, scrub
from warded.request import build_context, instant, printable, resource_of, utf8
from warded.scanners.base import (
    Finding,
    Scanner,
    builtin_scanner,
    found_text,
    scan_value,
    summary,
)
from warded.scanners.base import redact as mask_findings
from warded.store import MemoryStore, Store, Tx
from warded.tools import ResourceRule, Tool, describe, make_tool, schema_from_signature

log = logging.getLogger("warded")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Authorized:
    call: str
    tool: Tool
    frozen: bytes
    digest: str
    decision: Decision
    reservations: tuple[Reservation, ...]
    redact: frozenset[str]  # output scanners whose findings the determining permits mask
    approval: str | None  # the approval this call consumed


class _Unknown(LookupError):
    """The tool is not registered, or this principal can never be permitted it."""


class _Held(Exception):
    """Raised inside a store transaction to roll it back and refuse the call."""

    def __init__(self, code: RefusalCode, reason: str, detail: Mapping[str, Any] | None = None):
        self.code = code
        self.reason = reason
        self.detail = detail or {}


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
    ) -> None:
        self._engine = Engine(bundle)
        self._shadow: Engine | None = None
        self._source = source
        self._tools: dict[str, Tool] = {}
        self.store: Store = store if store is not None else MemoryStore()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.redactor: Redactor = redactor if redactor is not None else DefaultRedactor()
        self.decision_timeout = decision_timeout
        self.approval_ttl = approval_ttl
        self.scanners = tuple(scanners)
        self._scanners: dict[str, tuple[Scanner, ...]] = {}
        self.output_scanners = tuple(output_scanners)
        self.approvals = ApprovalDesk(self.store, self.clock)
        self._input_scanners(self._engine)  # a declared scan field without its scanner fails here
        self._reload_lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

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
        Open approvals bound to another version are voided.
        """
        bundle = self._load(new)
        engine = Engine(bundle)
        self._input_scanners(engine)
        with self._reload_lock:
            old = self._engine.version
            self._engine = engine
        now = self._now_or_wall()
        try:
            with self.store.transaction() as tx:
                tx.append([_event("reload", now, {"from": old, "to": bundle.version})])
                self.approvals.void(bundle.version, now, tx)
        except Exception as exc:
            log.error("could not record the reload or void approvals: %s", exc)
        return bundle.version

    def shadow(self, new: PolicyBundle | BundleFiles | str | Path | None) -> str | None:
        """Run a bundle beside the live one: it decides and is logged, never enforced."""
        if new is None:
            self._shadow = None
            return None
        bundle = self._load(new)
        self._shadow = Engine(bundle, mode="shadow")
        return bundle.version

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
    ) -> F | Callable[[F], F]:
        """Register a function as a tool; its argument schema comes from its type hints."""

        def register(f: F) -> F:
            self.register(
                name or f.__name__,
                schema_from_signature(f),
                f,
                description=describe(f) if description is None else description,
                effect=effect,
                resource=resource,
                sensitive=sensitive,
                labels=labels,
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
    ) -> Tool:
        """Register a tool described by a name and a JSON Schema, run by `executor(**args)`.

        `labels` are added to the calling session each time the tool runs.
        """
        tool = make_tool(
            name,
            parameters,
            executor,
            description=description,
            effect=effect,
            resource=resource,
            sensitive=tuple(sensitive),
            labels=tuple(labels),
        )
        if name in self._tools:
            raise WardedError(f"tool {name!r} is already registered")
        self._tools = {**self._tools, name: tool}
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

        For a host that knows content from outside entered the session by
        another way than a tool of this gate.
        """
        added = sorted(set(labels))
        if not all(isinstance(x, str) and x for x in added):
            raise WardedError("labels must be non-empty strings")
        with self.store.transaction() as tx:
            state = tx.update_session(session.id, labels=added)
            event = {"session": session.id, "labels_added": added, "reason": reason}
            tx.append([_event("session.labels", self._now_or_wall(), event)])
        return state

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

        Returns the tool's result, a Refusal, or a ToolFailure if the tool raised.
        A `call_id` (e.g. the model's tool-call id) runs at most once: a resend
        is refused.
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
                return self._timed_out(future, principal, tool)
        if isinstance(authorized, Refusal):
            return authorized
        started = time.perf_counter()
        try:
            kwargs = thaw(authorized.frozen)
            if authorized.tool.is_async:
                result = asyncio.run(authorized.tool.executor(**kwargs))
            else:
                result = authorized.tool.executor(**kwargs)
        except Exception as exc:
            return self._finish(principal, authorized, started, exc, session=session)
        return self._finish(principal, authorized, started, None, result, session=session)

    async def acall(
        self,
        principal: Principal,
        tool: str,
        args: Mapping[str, Any],
        session: Session,
        *,
        call_id: str | None = None,
    ) -> Any:
        """`call` for asyncio code: async tools are awaited, sync tools called in place."""
        if self.decision_timeout is None:
            authorized = self._authorize(principal, tool, args, session, False, call_id)
        else:
            future = self._executor().submit(
                self._authorize, principal, tool, args, session, False, call_id
            )
            try:
                authorized = await asyncio.wait_for(
                    asyncio.wrap_future(future), self.decision_timeout
                )
            except TimeoutError:
                return self._timed_out(future, principal, tool)
        if isinstance(authorized, Refusal):
            return authorized
        started = time.perf_counter()
        try:
            kwargs = thaw(authorized.frozen)
            result = authorized.tool.executor(**kwargs)
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:
            return self._finish(principal, authorized, started, exc, session=session)
        return self._finish(principal, authorized, started, None, result, session=session)

    def run_approved(self, approval_id: str, session: Session) -> Any:
        """Run an approved call exactly as it was approved, consuming the approval.

        It is the same as the agent retrying the identical call in its session.
        Raises ApprovalError if the approval is not approved and usable here.
        """
        approval = self.approvals.get(approval_id)
        if approval.status != "approved":
            raise ApprovalError("not_pending", f"approval {approval_id} is {approval.status}")
        if approval.session != session.id:
            raise ApprovalError("not_found", f"approval {approval_id} is for another session")
        args = thaw(approval.args.encode())
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
                cited = decision.policies[0] if decision.policies and not decision.errors else None
                return Refusal("not_permitted", ref="", policy=cited)
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
        value = thaw(canonical_json(t.prepare(args)))
        problem = t.check(value)
        if problem:
            raise ArgumentError(problem)
        resource = resource_of(t, value, engine.bundle)
        scanners = self._input_scanners(engine)
        found = scan_value(scanners, value) if scanners else []
        context = self._context(engine, t, value, session, now, found)
        return _checked(engine.decide(principal, tool, resource, context)), value, now

    def _context(
        self,
        engine: Engine,
        tool: Tool,
        value: Any,
        session: Session,
        now: float,
        found: list[Finding],
    ) -> dict[str, Any]:
        """The Cedar context, with `scan` where the tool's action declares it:
        per declared field, whether the input scanner of that name found anything."""
        state = self.store.session(session.id)
        context = build_context(to_cedar(value, tool.parameters), state, now)
        fields = engine.bundle.scanned.get(tool.name)
        if fields:
            context["scan"] = summary(found, fields)
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
        """Whether the reservations would fit now; nothing is kept (the transaction rolls back)."""
        try:
            with self.store.transaction() as tx:
                fits = all(tx.reserve(r) for r in reservations)
                raise _Held("limit_exceeded", "dry run")
        except _Held:
            return fits

    # -- the lifecycle ------------------------------------------------------

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
        engine = self._engine
        shadow = self._shadow
        base: dict[str, Any] = {
            "call": new_id(),
            "principal": utf8(str(principal)),
            "tool": printable(name),
            "bundle_version": engine.version,
        }
        if call_id is not None:
            base["detail"] = {"call_id": printable(call_id)}
        digest: str | None = None
        redacted: Any = None
        tool: Tool | None = None
        value: Any = None
        try:
            now = instant(self.clock.now())
            tool = self._tools.get(name) if isinstance(name, str) else None
            if tool is None or not engine.visible(principal, name):
                return self._refuse("unknown_tool", base, now, started)
            frozen = canonical_json(tool.prepare(args))
            digest = args_digest(frozen)
            value = thaw(frozen)
            scanners = self._input_scanners(engine)
            found = scan_value(scanners, value) if scanners else []
            masked = mask_findings(value, found) if found else value
            redacted = self.redactor.redact(tool.sensitive, masked)
            problem = tool.check(value)
            if problem is not None:
                return self._refuse(
                    "invalid_arguments", base, now, started, digest, redacted, detail=problem
                )
            if tool.is_async and in_loop:
                reason = "async tool called with call() inside a running event loop; use acall()"
                return self._refuse(
                    "unavailable", base, now, started, digest, redacted, reasons=(reason,)
                )
            resource = resource_of(tool, value, engine.bundle)
            context = self._context(engine, tool, value, session, now, found)
            decision = _checked(engine.decide(principal, name, resource, context))
            shadow_decision = _shadow_decide(shadow, principal, name, resource, context)
            owed = (
                obligations(engine.bundle, decision, base["principal"], name, value, now)
                if decision.allowed
                else None
            )
        except ArgumentError as exc:
            return self._refuse(
                "invalid_arguments", base, time.time(), started, digest, redacted, detail=str(exc)
            )
        except Exception as exc:
            reason = f"internal error before decision: {type(exc).__name__}: {exc}"
            if tool is not None and value is not None:
                (reason,) = scrub((reason,), tool.sensitive, value)
            return self._refuse(
                "unavailable", base, time.time(), started, digest, redacted, reasons=(reason,)
            )

        if decision.errors and (tool.sensitive or found):
            errors = scrub(decision.errors, tool.sensitive, value)
            errors = mask_strings(errors, {found_text(value, f) for f in found} - {""})
            decision = replace(decision, errors=errors)
        cedar_args = mask_findings(context["args"], found) if found else context["args"]
        request = {
            "resource": resource,
            "context": {**context, "args": self.redactor.redact(tool.sensitive, cedar_args)},
        }
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
        shadows = []
        if shadow_decision is not None:
            shadows.append(
                replace(
                    entry,
                    id=new_id(),
                    decision="allow" if shadow_decision.allowed else "deny",
                    code=None,
                    policies=shadow_decision.policies,
                    reasons=shadow_decision.errors,
                    mode="shadow",
                    bundle_version=shadow_decision.bundle_version,
                )
            )
        if owed is None:
            self._record([entry, *shadows], session.id)
            cited = decision.policies[0] if decision.policies and not decision.errors else None
            return Refusal("not_permitted", ref=entry.id, policy=cited)
        return self._commit(
            entry, shadows, owed, tool, frozen, digest, resource, decision, session, now, call_id
        )

    def _commit(
        self,
        entry: AuditEntry,
        shadows: list[AuditEntry],
        owed: Obligations,
        tool: Tool,
        frozen: bytes,
        digest: str,
        resource: Mapping[str, str],
        decision: Decision,
        session: Session,
        now: float,
        call_id: str | None,
    ) -> _Authorized | Refusal:
        """Apply the obligations and record the decision in one transaction."""
        try:
            with self.store.transaction() as tx:
                if owed.approval is not None:
                    bound = binding_digest(
                        entry.principal or "",
                        tool.name,
                        digest,
                        resource,
                        session.id,
                        decision.bundle_version,
                    )
                    approved = approved_for(tx, bound, now)
                    if approved is None:
                        pending = self._pending(
                            tx, bound, entry, owed, frozen, resource, session, now
                        )
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
                        tx.update_session(session.id, calls=1)
                        _sealed(tx.append([held, *shadows]), [held, *shadows])
                        return Refusal(
                            "approval_required",
                            ref=entry.id,
                            policy=owed.policy,
                            approval_id=pending.id,
                        )
                    tx.put_approval(approved.with_status("consumed"))
                    entry = replace(
                        entry,
                        detail={
                            **entry.detail,
                            "approval": approved.id,
                            "approved_by": approved.decided_by,
                        },
                    )
                if call_id is not None and not tx.claim(f"{entry.principal}|{call_id}"):
                    raise _Held("not_permitted", "call id already used", {"reused_call_id": True})
                for reservation in owed.reservations:
                    if not tx.reserve(reservation):
                        raise _Held("limit_exceeded", f"limit {reservation.key} reached")
                tx.update_session(session.id, calls=1)
                _sealed(tx.append([entry, *shadows]), [entry, *shadows])
        except _Held as held:
            refused = replace(
                entry,
                decision="deny",
                code=held.code,
                reasons=(held.reason,),
                detail={**entry.detail, **held.detail},
            )
            self._record([refused, *shadows], session.id)
            return Refusal(held.code, ref=entry.id)
        except Exception as exc:
            log.error("decision could not be recorded; call %s refused: %s", entry.call, exc)
            return Refusal("unavailable", ref=entry.id)
        consumed = entry.detail.get("approval") if owed.approval is not None else None
        return _Authorized(
            entry.call, tool, frozen, digest, decision, owed.reservations, owed.redact, consumed
        )

    def _pending(
        self,
        tx: Tx,
        bound: str,
        entry: AuditEntry,
        owed: Obligations,
        frozen: bytes,
        resource: Mapping[str, str],
        session: Session,
        now: float,
    ) -> Approval:
        """The open approval request for this exact call, created if there is none."""
        draft = Approval(
            id=new_id(),
            digest=bound,
            call=entry.call,
            principal=entry.principal or "",
            tool=entry.tool or "",
            args=frozen.decode(),
            args_digest=entry.args_digest or "",
            resource=dict(resource),
            session=session.id,
            bundle_version=entry.bundle_version or "",
            group=owed.approval or "",
            policy=owed.policy or "",
            created=now,
            expires=now + self.approval_ttl,
        )
        return pending_for(tx, draft, now)

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

    def _finish(
        self,
        principal: Principal,
        authorized: _Authorized,
        started: float,
        error: Exception | None,
        result: Any = None,
        outcome: str | None = None,
        detail: Mapping[str, Any] | None = None,
        *,
        session: Session | None = None,
    ) -> Any:
        """Record the outcome; a call that failed or never ran releases its reservations.

        A tool that ran (returned or raised) adds its labels to the session.
        """
        labels = set(authorized.tool.labels)
        if error is None and outcome is None and self.output_scanners:
            found = scan_value(self.output_scanners, result)
            labels |= {f.scanner for f in found}
            hidden = authorized.redact
            masked = [f for f in found if f.scanner in hidden]
            result = mask_findings(result, masked) if masked else result
            if found:
                seen = [{"scanner": f.scanner, "kind": f.kind, "path": f.path} for f in found]
                detail = {**(detail or {}), "findings": seen, "redacted": sorted(hidden)}
        if session is not None and labels:
            detail = {**(detail or {}), "labels_added": sorted(labels)}
        if error is not None:
            tool = authorized.tool
            (message,) = scrub((str(error)[:500],), tool.sensitive, thaw(authorized.frozen))
            detail = {**(detail or {}), "error": type(error).__name__, "message": message}
        entry = AuditEntry(
            kind="outcome",
            call=authorized.call,
            time=self._now_or_wall(),
            principal=utf8(str(principal)),
            tool=authorized.tool.name,
            args_digest=authorized.digest,
            bundle_version=authorized.decision.bundle_version,
            outcome=outcome or ("ok" if error is None else "error"),
            latency_us=_us(started),
            detail=detail or {},
        )
        never_ran = outcome == "not_run"
        release = [
            r
            for r in authorized.reservations
            if never_ran or (error is not None and r.kind == "budget")
        ]
        try:
            with self.store.transaction(durable=False) as tx:
                tx.append([entry])
                if session is not None and labels:
                    tx.update_session(session.id, labels=labels)
                for reservation in release:
                    tx.release(reservation)
                if never_ran and authorized.approval is not None:
                    give_back(tx, authorized.approval)
        except Exception as exc:
            log.error("outcome of call %s could not be recorded: %s", authorized.call, exc)
        if error is not None:
            return ToolFailure(ref=entry.id)
        return result

    def _record(self, entries: list[AuditEntry], session_id: str) -> None:
        """Append a decision's records and count the call in its session."""
        try:
            with self.store.transaction() as tx:
                tx.update_session(session_id, calls=1)
                _sealed(tx.append(entries), entries)
        except Exception as exc:
            log.error("audit append failed: %s", exc)

    def _append(self, entries: list[AuditEntry]) -> bool:
        try:
            _sealed(self.store.append(entries), entries)
            return True
        except Exception as exc:
            log.error("audit append failed: %s", exc)
            return False

    def _now_or_wall(self) -> float:
        try:
            return instant(self.clock.now())
        except Exception:
            return time.time()

    # -- decision_timeout ---------------------------------------------------------

    def _timed_out(
        self,
        future: concurrent.futures.Future[_Authorized | Refusal],
        principal: Principal,
        name: str,
    ) -> Refusal:
        """Refuse now; if the decision completes later, record that the call never ran."""
        ref = new_id()

        def late(f: concurrent.futures.Future[_Authorized | Refusal]) -> None:
            done = f.result() if not f.exception() else None
            if isinstance(done, _Authorized):
                reason = {"reason": "decision timed out", "timeout_ref": ref}
                self._finish(principal, done, time.perf_counter(), None, None, "not_run", reason)

        future.add_done_callback(late)
        entry = AuditEntry(
            kind="decision",
            id=ref,
            call=new_id(),
            time=time.time(),
            principal=utf8(str(principal)),
            tool=printable(name),
            decision="deny",
            code="unavailable",
            reasons=(f"decision timed out after {self.decision_timeout}s",),
            bundle_version=self._engine.version,
        )
        self._executor().submit(self._append, [entry])  # never wait on a hung store
        return Refusal("unavailable", ref=ref)

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            with self._reload_lock:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        thread_name_prefix="warded-decide"
                    )
        return self._pool


def _event(event: str, now: float, detail: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(kind="event", call=new_id(), time=now, detail={"event": event, **detail})


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
