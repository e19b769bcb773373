"""The output path of a call that ran (or never did): the result scanned and masked,
the session labelled, what the model receives remembered as a source, the
reservations and approval given back where due, and the outcome recorded."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from warded.audit.record import AuditEntry
from warded.authorize import scrubbed
from warded.calls import Authorized, NotRun, Unawaited
from warded.errors import ViewError
from warded.flagged import SCANNER as FLAGGING
from warded.flagged import flagged_text
from warded.model import Principal, Session, Source, ToolFailure
from warded.obligations.desk import give_back
from warded.outputs import masked as mask_result
from warded.outputs import view
from warded.provenance import APPROVED, INJECTED, leaves
from warded.records import now_or_wall, us
from warded.registry import ToolRegistry
from warded.request import utf8
from warded.scanners.base import Finding, is_key, scan_value, shown_paths, text_at
from warded.scanners.base import redact as mask_findings

if TYPE_CHECKING:
    from warded.gate import Gate

log = logging.getLogger("warded")
UNTRUSTED = "untrusted"  # the label an opaque tool's result gives the session
ERROR_TEXT = 500  # characters of a tool's error message the log keeps


def finish(
    gate: Gate,
    principal: Principal,
    authorized: Authorized,
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
    if isinstance(error, NotRun):
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
    elif ran and gate.output_scanners:
        result, found, scanned, seen, flagged = scan_output(gate, authorized, result)
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
        notes.update(error=type(error).__name__, message=error_text(gate, authorized, error))
    never_ran = outcome == "not_run"
    # ran, and raised (or was cancelled or interrupted); an unawaited result may be
    # running still, so not even an atomic tool gives its budget back
    failed = error is not None and not isinstance(error, Unawaited)
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
    now = now_or_wall(gate.clock)
    entry = AuditEntry(
        kind="outcome",
        call=authorized.call,
        time=now,
        principal=utf8(str(principal)),
        tool=authorized.tool.name,
        args_digest=authorized.digest,
        bundle_version=authorized.decision.bundle_version,
        outcome=outcome or "ok",
        latency_us=us(started),
        detail=notes,
        session=session.id,
    )
    recorded = False
    added = None
    for attempt in (entry, entry.reduced("the full outcome could not be sealed")):
        try:
            with gate.store.transaction(durable=bool(labels)) as tx:
                tx.append([attempt])
                if labels:
                    tx.update_session(session.id, labels=labels)
                if remember:
                    added = tx.remember(session.id, sources, limit=gate.remember, overflowed=unseen)
                for reservation in released:
                    tx.release(reservation)
                if never_ran and authorized.approval is not None:
                    give_back(tx, authorized.approval, now, "the call never ran")
            recorded = True
            break
        except Exception as exc:
            log.error("outcome of call %s not recorded: %s", entry.call, type(exc).__name__)
    if added is not None and recorded:
        gate._indexes.advance(session.id, added, len(sources))
    # an unlabelled result that could not be remembered is returned: its values
    # only lose the tool's name (never more trusted); a labelled one is withheld
    if error is not None or never_ran or withheld or ((labels or unseen) and not recorded):
        return ToolFailure(ref=entry.id)
    return result


def scan_output(
    registry: ToolRegistry, authorized: Authorized, result: Any
) -> tuple[Any, set[str], dict[str, Any], Any, tuple[str, ...] | None]:
    """(result masked per @redact, labels from findings, notes for the outcome record,
    its view as masked, the text of its flagged regions).

    Any result is scanned through its JSON view (`warded.outputs`), keys and
    values; one that has none is withheld. The findings' paths in the notes
    name keys as every finding masks them, whatever `@redact` says. The
    flagged regions are those of the findings of an output scanner named
    `injection` (`warded.flagged`), as masked; if the scan raised and such a
    scanner is among the output scanners, they are None: the whole result is
    treated as flagged (fail closed).
    """
    try:
        seen = view(result)
    except ViewError as exc:
        return None, set(), {"withheld": f"the result has no JSON view: {exc}"}, None, ()
    except Exception as exc:  # the result's own code (a view hook, a mapping) raised
        withheld = {"withheld": f"viewing the result raised {type(exc).__name__}"}
        return None, set(), withheld, None, ()
    try:
        found = scan_value(registry._tool_scanners(), seen)
        labels = {f.scanner for f in found}
        hiding = [f for f in found if f.scanner in authorized.redact]
        notes: dict[str, Any] = {}
        if found:
            where = [{"scanner": f.scanner, "kind": f.kind, "path": f.path} for f in found]
            if any(is_key(f.path) for f in found):  # no key in clear in the log
                shown = shown_paths(seen, mask_findings(seen, found), (f.path for f in found))
                for w, path in zip(where, shown, strict=True):
                    w["path"] = path
            notes = {"findings": where, "redacted": sorted(authorized.redact)}
        flagged = flagged_regions(seen, found, hiding)
        if not hiding:
            return result, labels, notes, seen, flagged
        masked = mask_findings(seen, hiding)
        return mask_result(result, hiding), labels, notes, masked, flagged
    except Exception as exc:
        # fail closed: as if every output scanner had found something
        labels = {str(getattr(s, "name", "scanner")) for s in registry.output_scanners}
        notes = {"scan_error": type(exc).__name__}
        if authorized.redact:
            notes["withheld"] = "the result could not be scanned for what must be masked"
        regions = None if FLAGGING in labels else ()
        return result, labels, notes, seen, regions


def error_text(gate: Gate, authorized: Authorized, error: BaseException) -> str:
    """A tool's error message as the log keeps it: the call's secrets masked, and
    whatever the input scanners find in it; valid UTF-8 (a lone surrogate escaped), so
    the outcome can be sealed whole."""
    try:
        # masked before it is cut: a cut first could keep the start of a secret
        text = utf8(authorized.secrets.mask(str(error))[: 2 * ERROR_TEXT])
        return scrubbed(gate, gate._engine, text)[:ERROR_TEXT]
    except Exception:
        return "<message not readable>"


def flagged_regions(
    seen: Any, found: Sequence[Finding], hiding: Sequence[Finding]
) -> tuple[str, ...]:
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
