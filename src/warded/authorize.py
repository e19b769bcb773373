"""Authorizing a call: resolve, freeze, validate, scan the arguments, build the
request and its context, decide (the shadow engine beside), and commit; decided
again when the bundle or the session's labels changed meanwhile. Every refusal on
the way is recorded."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from warded.audit.record import AuditEntry, new_id
from warded.calls import Authorized, Decided, Stale
from warded.canonical import args_digest, canonical_json, thaw
from warded.commit import commit
from warded.decisions import checked, shadow_decide, shadow_entries
from warded.errors import ArgumentError, BundleError
from warded.links import links, listed
from warded.model import Principal, Refusal, Session, SessionState
from warded.obligations.plan import obligations
from warded.policy.engine import Engine
from warded.provenance import strings
from warded.records import now_or_wall, refuse, us
from warded.redaction import Secrets, mask_by_name
from warded.request import MAX_NAME, build_context, instant, printable, resource_of, utf8
from warded.scanners.base import (
    Finding,
    Scanner,
    found_text,
    is_key,
    mask_text,
    scan_value,
    summary,
    text_at,
)
from warded.scanners.base import redact as mask_findings
from warded.tools import Tool

if TYPE_CHECKING:
    from warded.gate import Gate

log = logging.getLogger("warded")

ATTEMPTS = 5  # decisions per call when the bundle or the session's labels keep changing


def authorize(
    gate: Gate,
    principal: Principal,
    name: str,
    args: Mapping[str, Any],
    session: Session,
    in_loop: bool,
    call_id: str | None,
) -> Authorized | Refusal:
    started = time.perf_counter()
    behind = None
    last: Decided | None = None
    for _ in range(ATTEMPTS):
        decided = decide_once(gate, principal, name, args, session, in_loop, call_id, started)
        if not isinstance(decided, Decided):
            return decided
        last = decided
        try:
            return commit(gate, decided)
        except Stale as stale:
            if stale.live is not None and not catch_up(gate, stale.live):
                behind = stale.live
                break
    base = base_of(gate._engine, principal, name, session, call_id)
    reason = "the policy bundle or the session's labels changed during every attempt"
    if behind is not None:
        reason = f"bundle {behind} is live and this gate cannot load it"
    digest, shown = (last.entry.args_digest, last.entry.args) if last else (None, None)
    return refuse(
        gate.store,
        "unavailable",
        base,
        now_or_wall(gate.clock),
        started,
        digest,
        shown,  # as the last decision recorded them: redacted
        reasons=(reason,),
    )


def catch_up(gate: Gate, live: str) -> bool:
    """The store says `live` is the deployment's bundle (`warded policy push`): reload
    from the policy source, once for all callers; whether this gate is now on it."""
    with gate._catching_up:
        if gate._engine.version != live and gate._source is not None:
            try:
                gate.reload()
            except BundleError as exc:
                log.error("cannot load the live bundle %s: %s", live, exc)
        return gate._engine.version == live


def base_of(
    engine: Engine,
    principal: Principal,
    name: object,
    session: Session,
    call_id: object,
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


def decide_once(
    gate: Gate,
    principal: Principal,
    name: str,
    args: Mapping[str, Any],
    session: Session,
    in_loop: bool,
    call_id: str | None,
    started: float,
) -> Decided | Refusal:
    """Resolve, freeze, validate, build the request and decide; refusals are recorded."""
    engine = gate._engine
    shadow = gate._shadow
    base = base_of(engine, principal, name, session, call_id)
    digest: str | None = None
    redacted: Any = None
    secrets = Secrets()
    try:
        now = instant(gate.clock.now())
        tool = gate._tools.get(name) if isinstance(name, str) else None
        if tool is None or not engine.visible(principal, name):
            base["tool"] = masked_name(gate, engine, name)
            return refuse(gate.store, "unknown_tool", base, now, started)
        frozen = canonical_json(tool.prepare(args))
        digest = args_digest(frozen, gate._key)
        value = thaw(frozen)
        secrets = Secrets.of_call(tool.sensitive, value)  # before a scanner can fail quoting them
        scanners = gate._input_scanners(engine)
        found = scan_arguments(scanners, tool, value) if scanners else []
        hidden: list[Finding] = []
        if found:
            secrets = Secrets.of_call(tool.sensitive, value, (found_text(value, f) for f in found))
            hidden = to_mask(found, value, tool.sensitive)
        masked = mask_findings(value, hidden) if hidden else value
        redacted = gate.redactor.redact(tool.sensitive, masked)
        problem = tool.check(value)
        if problem is not None:  # its path may name a key with a secret
            return refuse(
                gate.store,
                "invalid_arguments",
                base,
                now,
                started,
                digest,
                redacted,
                detail=scrubbed(gate, engine, secrets.mask(problem)),
            )
        kwargs = tool.arguments(thaw(frozen))
        if tool.is_async and in_loop:
            reason = "async tool called with call() inside a running event loop; use acall()"
            return refuse(
                gate.store, "unavailable", base, now, started, digest, redacted, reasons=(reason,)
            )
        state = gate.store.session(session.id)
        resource = resource_of(tool, value, engine.bundle)
        context = context_of(gate, engine, tool, value, state, now, found)
        decision = checked(engine.decide(principal, name, resource, context))
        shadow_decision = shadow_decide(shadow, principal, name, resource, context)
        owed = (
            obligations(engine.bundle, decision, base["principal"], name, value, now)
            if decision.allowed
            else None
        )
        if decision.errors and secrets:
            decision = replace(decision, errors=secrets.mask_all(decision.errors))
        if shadow_decision is not None and shadow_decision.errors and secrets:
            errors = secrets.mask_all(shadow_decision.errors)
            shadow_decision = replace(shadow_decision, errors=errors)
        cedar_args = mask_findings(context["args"], hidden) if hidden else context["args"]
        request = {
            "resource": resource,
            "context": {**context, "args": gate.redactor.redact(tool.sensitive, cedar_args)},
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
                    gate._indexes.provenance,
                    state.id,
                    state.remembered,
                    lambda after: gate.store.sources(state.id, after),
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
            latency_us=us(started),
            request=request,
            **base,
        )
        return Decided(
            entry=entry,
            shadows=shadow_entries(entry, shadow_decision),
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
        now = now_or_wall(gate.clock)
        try:  # the error may name keys of arguments not yet scanned (`too_deep`)
            detail = scrubbed(gate, engine, secrets.mask(str(exc)))
        except Exception:
            detail = "<detail not scannable>"
        return refuse(
            gate.store, "invalid_arguments", base, now, started, digest, redacted, detail=detail
        )
    except Exception as exc:
        now = now_or_wall(gate.clock)
        reason = secrets.mask(f"internal error before decision: {type(exc).__name__}: {exc}")
        return refuse(
            gate.store, "unavailable", base, now, started, digest, redacted, reasons=(reason,)
        )


def scan_arguments(scanners: Sequence[Scanner], tool: Tool, value: Any) -> list[Finding]:
    """The input scanners' findings in a call's arguments, values and keys, but for the
    tool's own parameter names (`scan_value`'s `declared`: its schema's `properties`)."""
    return scan_value(scanners, value, tool.parameters.get("properties", {}))


def to_mask(found: list[Finding], value: Any, sensitive: frozenset[str]) -> list[Finding]:
    """The findings the records mask: all but those on a key that names a sensitive
    parameter (the tool declares that name; it stays, so its value is masked by name)."""
    if not sensitive:
        return found
    return [f for f in found if not (is_key(f.path) and text_at(value, f.path) in sensitive)]


def scrubbed(gate: Gate, engine: Engine, text: str) -> str:
    """A text about a call as the log keeps it: what the input scanners find in it masked
    (mask the call's own secrets first, before any cut)."""
    found = [f for s in gate._input_scanners(engine) for f in s.scan(text)]
    return mask_text(text, found) if found else text


def masked_name(gate: Gate, engine: Engine, name: object) -> str:
    """A requested tool name as the log keeps it: what the input scanners find masked,
    then cut to length (a cut first could leave the start of a secret unrecognised)."""
    if not isinstance(name, str):
        return printable(name)
    try:
        return printable(scrubbed(gate, engine, utf8(name[: 2 * MAX_NAME])))
    except Exception:
        return "<tool name not scannable>"


def context_of(
    gate: Gate,
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
        context["provenance"] = gate._indexes.provenance(
            state.id,
            state.remembered,
            lambda after: gate.store.sources(state.id, after),
            value,
            names,
        )
    texts = engine.bundle.links.get(tool.name)
    if texts:  # the links inside free text (`warded.links`): their count and sources
        inside = {n: [x for s in strings(value.get(n)) for x in links(s)] for n in texts}
        sources = gate._indexes.provenance(
            state.id,
            state.remembered,
            lambda after: gate.store.sources(state.id, after),
            inside,
            texts,
        )
        context["links"] = {n: {"count": len(inside[n]), "provenance": sources[n]} for n in texts}
    return context


def call_id_text(call_id: object) -> str | None:
    """A caller's call id as the log keeps it."""
    return None if call_id is None else printable(call_id)
