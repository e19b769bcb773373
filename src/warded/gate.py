"""The gate: lists visible tools, decides every call, audits before acting, executes.

One path per call (DESIGN.md, "The request lifecycle"):
resolve → freeze → validate → build the request → decide → audit → execute →
record the outcome. Every failure before execution is a refusal, never an
exception, and the tool does not run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, overload

from warded.audit.record import AuditEntry, AuditRecord, new_id
from warded.audit.store import AuditStore, MemoryAuditStore
from warded.canonical import args_digest, canonical_json, thaw
from warded.clock import Clock, SystemClock
from warded.errors import ArgumentError, BundleError, Problem, RefusalCode, WardedError
from warded.model import Decision, Principal, Refusal, Session, ToolFailure, ToolSpec
from warded.policy.bundle import PolicyBundle
from warded.policy.engine import Engine, unmet_obligation
from warded.policy.source import BundleFiles, DirectorySource, PolicySource
from warded.policy.values import to_cedar
from warded.redaction import DefaultRedactor, Redactor, scrub
from warded.tools import ResourceRule, Tool, describe, make_tool, schema_from_signature

log = logging.getLogger("warded")
F = TypeVar("F", bound=Callable[..., Any])
MAX_NAME = 128


@dataclass(frozen=True, slots=True)
class _Authorized:
    call: str
    tool: Tool
    frozen: bytes
    digest: str
    decision: Decision
    ref: str


def build_context(args: Any, session: Session, now: float) -> dict[str, Any]:
    """The Cedar context warded provides to every action (see CONTEXT_CONTRACT)."""
    t = time.gmtime(now)
    return {
        "args": args,
        "session": {"id": session.id, "labels": sorted(session.labels), "calls": session.calls},
        "now": {"epoch": int(now), "hour": t.tm_hour, "weekday": t.tm_wday + 1},
    }


class Gate:
    """The enforcement point for one set of tools and one live policy bundle."""

    def __init__(
        self,
        bundle: PolicyBundle,
        *,
        source: PolicySource | None = None,
        audit: AuditStore | None = None,
        clock: Clock | None = None,
        redactor: Redactor | None = None,
        decision_timeout: float | None = None,
    ) -> None:
        self._engine = Engine(bundle)
        self._shadow: Engine | None = None
        self._source = source
        self._tools: dict[str, Tool] = {}
        self.audit: AuditStore = audit if audit is not None else MemoryAuditStore()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.redactor: Redactor = redactor if redactor is not None else DefaultRedactor()
        self.decision_timeout = decision_timeout
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
        """
        bundle = self._load(new)
        with self._reload_lock:
            old = self._engine.version
            self._engine = Engine(bundle)
        self._event("reload", {"from": old, "to": bundle.version})
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
    ) -> Tool:
        """Register a tool described by a name and a JSON Schema, run by `executor(**args)`."""
        tool = make_tool(
            name,
            parameters,
            executor,
            description=description,
            effect=effect,
            resource=resource,
            sensitive=tuple(sensitive),
        )
        if name in self._tools:
            raise WardedError(f"tool {name!r} is already registered")
        self._tools[name] = tool
        return tool

    def tools(self, principal: Principal, session: Session | None = None) -> list[ToolSpec]:
        """The tools some call could be permitted for; the rest do not exist for this principal."""
        engine = self._engine
        return [t.spec() for n, t in self._tools.items() if engine.visible(principal, n)]

    # -- calls --------------------------------------------------------------

    def call(
        self, principal: Principal, tool: str, args: Mapping[str, Any], session: Session
    ) -> Any:
        """Decide and, if allowed, run one call.

        Returns the tool's result, a Refusal, or a ToolFailure if the tool raised.
        """
        authorized = self._authorize_bounded(
            principal, tool, args, session, in_loop=_loop_running()
        )
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
            return self._finish(principal, authorized, started, exc)
        return self._finish(principal, authorized, started, None, result)

    async def acall(
        self, principal: Principal, tool: str, args: Mapping[str, Any], session: Session
    ) -> Any:
        """`call` for asyncio code: async tools are awaited, sync tools called in place."""
        if self.decision_timeout is None:
            authorized = self._authorize(principal, tool, args, session, in_loop=False)
        else:
            authorized = await self._authorize_async_bounded(principal, tool, args, session)
        if isinstance(authorized, Refusal):
            return authorized
        started = time.perf_counter()
        try:
            kwargs = thaw(authorized.frozen)
            result = authorized.tool.executor(**kwargs)
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:
            return self._finish(principal, authorized, started, exc)
        return self._finish(principal, authorized, started, None, result)

    def decide(
        self, principal: Principal, tool: str, args: Mapping[str, Any], session: Session
    ) -> Decision | Refusal:
        """What a call would get now, without executing or auditing it (a dry run).

        Returns the allowing Decision, or the Refusal the call would get (with an
        empty `ref`, since nothing is recorded).
        """
        engine = self._engine
        t = self._tools.get(tool) if isinstance(tool, str) else None
        if t is None or not engine.visible(principal, tool):
            return Refusal("unknown_tool", ref="")
        try:
            value = thaw(canonical_json(t.prepare(args)))
            problem = t.check(value)
            if problem:
                return Refusal("invalid_arguments", ref="", detail=problem)
            resource = _resource(t, value, engine.bundle)
            context = build_context(to_cedar(value, t.parameters), session, self.clock.now())
            decision = _checked(engine.decide(principal, tool, resource, context))
        except ArgumentError as exc:
            return Refusal("invalid_arguments", ref="", detail=str(exc))
        except Exception:
            return Refusal("unavailable", ref="")
        if not decision.allowed:
            cited = decision.policies[0] if decision.policies and not decision.errors else None
            return Refusal("not_permitted", ref="", policy=cited)
        held = unmet_obligation(engine.bundle, decision)
        if held is not None:
            return Refusal(
                held[0], ref="", policy=held[2] if held[0] == "approval_required" else None
            )
        return decision

    # -- the lifecycle ------------------------------------------------------

    def _authorize(
        self,
        principal: Principal,
        name: str,
        args: Mapping[str, Any],
        session: Session,
        *,
        in_loop: bool,
    ) -> _Authorized | Refusal:
        started = time.perf_counter()
        call = new_id()
        engine = self._engine
        shadow = self._shadow
        shown = _printable(name)
        base: dict[str, Any] = {
            "call": call,
            "principal": _utf8(str(principal)),
            "tool": shown,
            "bundle_version": engine.version,
        }
        digest: str | None = None
        redacted: Any = None
        tool: Tool | None = None
        value: Any = None
        try:
            now = _instant(self.clock.now())
            tool = self._tools.get(name) if isinstance(name, str) else None
            if tool is None or not engine.visible(principal, name):
                return self._refuse("unknown_tool", base, now, started)
            frozen = canonical_json(tool.prepare(args))
            digest = args_digest(frozen)
            value = thaw(frozen)
            redacted = self.redactor.redact(tool.sensitive, value)
            problem = tool.check(value)
            if problem is not None:
                return self._refuse(
                    "invalid_arguments",
                    base,
                    now,
                    started,
                    digest=digest,
                    args=redacted,
                    detail=problem,
                )
            if tool.is_async and in_loop:
                reason = "async tool called with call() inside a running event loop; use acall()"
                return self._refuse(
                    "unavailable",
                    base,
                    now,
                    started,
                    digest=digest,
                    args=redacted,
                    reasons=(reason,),
                )
            resource = _resource(tool, value, engine.bundle)
            context = build_context(to_cedar(value, tool.parameters), session, now)
            decision = _checked(engine.decide(principal, name, resource, context))
            shadow_decision = _shadow_decide(shadow, principal, name, resource, context)
            request = {
                "resource": resource,
                "context": {
                    **context,
                    "args": self.redactor.redact(tool.sensitive, context["args"]),
                },
            }
        except ArgumentError as exc:
            return self._refuse(
                "invalid_arguments",
                base,
                time.time(),
                started,
                digest=digest,
                args=redacted,
                detail=str(exc),
            )
        except Exception as exc:
            reason = f"internal error before decision: {type(exc).__name__}: {exc}"
            if tool is not None and value is not None:
                (reason,) = scrub((reason,), tool.sensitive, value)
            return self._refuse(
                "unavailable",
                base,
                time.time(),
                started,
                digest=digest,
                args=redacted,
                reasons=(reason,),
            )

        if tool.sensitive:
            decision = replace(decision, errors=scrub(decision.errors, tool.sensitive, value))
        session.count_call()
        latency = _us(started)
        entry = AuditEntry(
            kind="decision",
            time=now,
            args_digest=digest,
            args=redacted,
            decision="allow" if decision.allowed else "deny",
            code=None if decision.allowed else "not_permitted",
            policies=decision.policies,
            reasons=decision.errors,
            latency_us=latency,
            request=request,
            **base,
        )
        entries = [entry]
        if shadow_decision is not None:
            entries.append(
                AuditEntry(
                    kind="decision",
                    time=now,
                    args_digest=digest,
                    args=redacted,
                    decision="allow" if shadow_decision.allowed else "deny",
                    policies=shadow_decision.policies,
                    reasons=shadow_decision.errors,
                    mode="shadow",
                    latency_us=latency,
                    request=request,
                    **{**base, "bundle_version": shadow_decision.bundle_version},
                )
            )
        if not decision.allowed:
            self._append(entries)
            cited = decision.policies[0] if decision.policies and not decision.errors else None
            return Refusal("not_permitted", ref=entry.id, policy=cited)
        held = unmet_obligation(engine.bundle, decision)
        if held is not None:
            code, reason, pid = held
            entries[0] = replace(entry, decision="deny", code=code, reasons=(reason,))
            self._append(entries)
            return Refusal(code, ref=entry.id, policy=pid if code == "approval_required" else None)
        try:
            _sealed(self.audit.append(entries), entries)
        except Exception as exc:
            log.error("audit append failed; call %s refused: %s", call, exc)
            return Refusal("unavailable", ref=entry.id)
        return _Authorized(call, tool, frozen, digest, decision, entry.id)

    def _refuse(
        self,
        code: RefusalCode,
        base: Mapping[str, Any],
        now: float,
        started: float,
        *,
        digest: str | None = None,
        args: Any = None,
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
    ) -> Any:
        entry = AuditEntry(
            kind="outcome",
            call=authorized.call,
            time=self._now_or_wall(),
            principal=_utf8(str(principal)),
            tool=authorized.tool.name,
            args_digest=authorized.digest,
            bundle_version=authorized.decision.bundle_version,
            outcome="ok" if error is None else "error",
            latency_us=_us(started),
            detail={}
            if error is None
            else {
                "error": type(error).__name__,
                "message": self._scrubbed_error(authorized, error),
            },
        )
        self._append([entry])
        if error is not None:
            return ToolFailure(ref=entry.id)
        return result

    def _scrubbed_error(self, authorized: _Authorized, error: Exception) -> str:
        tool = authorized.tool
        (message,) = scrub((str(error)[:500],), tool.sensitive, thaw(authorized.frozen))
        return message

    def _append(self, entries: list[AuditEntry]) -> bool:
        try:
            self.audit.append(entries)
            return True
        except Exception as exc:
            log.error("audit append failed: %s", exc)
            return False

    def _event(self, event: str, detail: Mapping[str, Any]) -> None:
        self._append(
            [
                AuditEntry(
                    kind="event",
                    call=new_id(),
                    time=self._now_or_wall(),
                    detail={"event": event, **detail},
                )
            ]
        )

    def _now_or_wall(self) -> float:
        try:
            return _instant(self.clock.now())
        except Exception:
            return time.time()

    # -- bounded authorization (decision_timeout) ------------------------------

    def _authorize_bounded(
        self,
        principal: Principal,
        name: str,
        args: Mapping[str, Any],
        session: Session,
        *,
        in_loop: bool,
    ) -> _Authorized | Refusal:
        if self.decision_timeout is None:
            return self._authorize(principal, name, args, session, in_loop=in_loop)
        pool = self._executor()
        future = pool.submit(self._authorize, principal, name, args, session, in_loop=in_loop)
        try:
            return future.result(timeout=self.decision_timeout)
        except concurrent.futures.TimeoutError:
            return self._timed_out(future, principal, name)

    async def _authorize_async_bounded(
        self, principal: Principal, name: str, args: Mapping[str, Any], session: Session
    ) -> _Authorized | Refusal:
        future = self._executor().submit(
            self._authorize, principal, name, args, session, in_loop=False
        )
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.decision_timeout)
        except TimeoutError:
            return self._timed_out(future, principal, name)

    def _timed_out(
        self,
        future: concurrent.futures.Future[_Authorized | Refusal],
        principal: Principal,
        name: str,
    ) -> Refusal:
        ref = new_id()

        def late(f: concurrent.futures.Future[_Authorized | Refusal]) -> None:
            done = f.result() if not f.exception() else None
            if isinstance(done, _Authorized):
                self._append(
                    [
                        AuditEntry(
                            kind="outcome",
                            call=done.call,
                            time=self._now_or_wall(),
                            principal=_utf8(str(principal)),
                            tool=done.tool.name,
                            args_digest=done.digest,
                            bundle_version=done.decision.bundle_version,
                            outcome="not_run",
                            detail={"reason": "decision timed out", "timeout_ref": ref},
                        )
                    ]
                )

        future.add_done_callback(late)
        shown = _printable(name)
        self._executor().submit(
            self._append,
            [
                AuditEntry(
                    kind="decision",
                    id=ref,
                    call=new_id(),
                    time=time.time(),
                    principal=_utf8(str(principal)),
                    tool=shown,
                    decision="deny",
                    code="unavailable",
                    reasons=(f"decision timed out after {self.decision_timeout}s",),
                    bundle_version=self._engine.version,
                )
            ],
        )
        return Refusal("unavailable", ref=ref)

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            with self._reload_lock:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        thread_name_prefix="warded-decide"
                    )
        return self._pool


def _resource(tool: Tool, value: Mapping[str, Any], bundle: PolicyBundle) -> dict[str, str]:
    if tool.resource is None:
        action = bundle.actions.get(tool.name)
        namespace = action[0][: -len("Action")] if action else ""
        return {"type": f"{namespace}Tool", "id": tool.name}
    entity_type, entity_id = tool.resource(value)
    if not isinstance(entity_type, str) or not isinstance(entity_id, str):
        raise TypeError("resource rule must return (type, id) strings")
    return {"type": entity_type, "id": entity_id}


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
        return shadow.decide(principal, name, resource, context)
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
        if not isinstance(record, AuditRecord) or record.body.get("id") != entry.id:
            raise TypeError("audit store returned records that are not the ones appended")


def _instant(value: object) -> float:
    """A clock reading: a finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"clock returned {type(value).__name__}, not a finite number of seconds")
    return float(value)


def _printable(name: object) -> str:
    """A requested tool name as the audit log can hold it: a bounded string."""
    if not isinstance(name, str):
        return f"<{type(name).__name__}>"
    return _utf8(name[:MAX_NAME])


def _utf8(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _us(started: float) -> int:
    return int((time.perf_counter() - started) * 1_000_000)
