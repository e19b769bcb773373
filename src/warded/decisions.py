"""What the gate makes of a policy engine's answer: checked for shape (a malformed
answer is an error, an allow with errors a deny), the policy a refusal cites, and a
shadow engine's decision with the audit entry that logs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from warded.audit.record import AuditEntry, new_id
from warded.model import Decision, Principal
from warded.policy.engine import Engine


def cited(decision: Decision) -> str | None:
    """The policy a refusal cites: the first determining one, unless the engine erred."""
    return decision.policies[0] if decision.policies and not decision.errors else None


def shadow_decide(
    shadow: Engine | None,
    principal: Principal,
    name: str,
    resource: Mapping[str, str],
    context: Mapping[str, Any],
) -> Decision | None:
    if shadow is None:
        return None
    try:
        return checked(shadow.decide(principal, name, resource, context))
    except Exception as exc:
        return Decision(
            False, (), (f"shadow engine error: {type(exc).__name__}",), shadow.version, "shadow"
        )


def shadow_entries(entry: AuditEntry, shadow: Decision | None) -> tuple[AuditEntry, ...]:
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


def checked(decision: object) -> Decision:
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
