"""Committing a decided call: its decision recorded with its obligations in one store
transaction (an approval consumed or requested, a call id claimed, limits reserved),
after checking that the bundle and the session's labels are still those it was
decided on; and the approval request drafted for a call that needs one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from warded.audit.record import new_id
from warded.calls import Authorized, Decided, Held, Stale
from warded.canonical import canonical_json
from warded.decisions import cited
from warded.model import Refusal
from warded.obligations.approvals import Approval, binding_digest
from warded.obligations.desk import approved_for, pending_for, transition
from warded.provenance import leaves
from warded.records import append, sealed
from warded.redaction import mask_by_name

if TYPE_CHECKING:
    from warded.gate import Gate

log = logging.getLogger("warded")


def commit(gate: Gate, d: Decided) -> Authorized | Refusal:
    """Record the decision with its obligations in one transaction; raise Stale if
    the bundle or the session's labels changed since it was made."""
    entry = d.entry
    owed = d.owed
    try:
        with gate.store.transaction() as tx:
            live = tx.live_version()
            if live is not None and live != d.decision.bundle_version:
                raise Stale(live if live != gate._engine.version else None)
            # Sources remembered meanwhile need no new decision: a result reaches
            # the model only after its outcome (and what it remembers) committed,
            # so whatever the model could have taken this call's values from was
            # remembered before the decision read the session.
            if (
                gate._engine.version != d.decision.bundle_version
                or tx.session(d.session).labels != d.labels
            ):
                raise Stale
            tx.update_session(d.session, calls=1)
            if owed is None:
                sealed(tx.append([entry, *d.shadows]), [entry, *d.shadows])
                return Refusal("not_permitted", ref=entry.id, policy=cited(d.decision))
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
                    pending = pending_for(tx, draft(d, bound, gate.approval_ttl), d.now)
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
                    sealed(tx.append([held, *d.shadows]), [held, *d.shadows])
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
                raise Held("not_permitted", "call id already used", reused)
            for reservation in owed.reservations:
                if not tx.reserve(reservation):
                    raise Held("limit_exceeded", f"limit {reservation.key} reached")
            if owed.reservations:
                reserved = [r.to_json() for r in owed.reservations]
                entry = replace(entry, detail={**entry.detail, "reservations": reserved})
            sealed(tx.append([entry, *d.shadows]), [entry, *d.shadows])
    except Stale:
        raise
    except Held as held:
        refused = replace(
            entry,
            decision="deny",
            code=held.code,
            reasons=(held.reason,),
            detail={**entry.detail, **held.detail},
        )
        append(gate.store, [refused, *d.shadows], session=d.session)
        return Refusal(held.code, ref=entry.id)
    except Exception as exc:
        reason = d.secrets.mask(f"decision not recorded: {type(exc).__name__}: {exc}")
        log.error("call %s refused: the decision could not be recorded", entry.call)
        append(gate.store, [replace(entry, decision="deny", code="unavailable", reasons=(reason,))])
        return Refusal("unavailable", ref=entry.id)
    return Authorized(
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


def draft(d: Decided, bound: str, ttl: float) -> Approval:
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
        expires=d.now + ttl,
        call_args=d.frozen.decode() if shown == d.value else None,
    )
