"""What an allow obliges: the approval and the limit reservations of its permits.

Every permit that determined an allow contributes its obligations: if any
requires approval, the call needs an approval from every group named; every
`@rate` and `@budget` reserves against its own counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warded.model import Decision
from warded.obligations.limits import Reservation, reservations
from warded.policy.bundle import PolicyBundle, PolicyInfo


@dataclass(frozen=True, slots=True)
class Obligations:
    """`approval` names the approver groups (comma-separated) or is None."""

    approval: str | None
    policy: str | None
    reservations: tuple[Reservation, ...]
    redact: frozenset[str] = frozenset()


NONE = Obligations(None, None, ())
"""What an allow owes when no determining permit carries an obligation."""


def permits(bundle: PolicyBundle, decision: Decision) -> list[PolicyInfo]:
    """The determining policies' info, in id order."""
    return [bundle.policies[p] for p in sorted(decision.policies) if p in bundle.policies]


def approval_of(bundle: PolicyBundle, decision: Decision) -> tuple[str, str] | None:
    """(approver groups, first policy requiring them), if the allow needs an approval."""
    return _approval(permits(bundle, decision))


def _approval(infos: list[PolicyInfo]) -> tuple[str, str] | None:
    needing = [i for i in infos if i.approval is not None]
    if not needing:
        return None
    groups = ",".join(sorted({i.approval for i in needing if i.approval}))
    return groups, needing[0].id


def obligations(
    bundle: PolicyBundle,
    decision: Decision,
    principal: str,
    tool: str,
    args: Mapping[str, Any],
    now: float,
) -> Obligations:
    """The obligations of an allowed decision; ArgumentError if a budget cannot be charged."""
    if bundle.obligated.isdisjoint(decision.policies):
        return NONE
    infos = permits(bundle, decision)
    approval = _approval(infos)
    return Obligations(
        approval[0] if approval else None,
        approval[1] if approval else None,
        tuple(reservations(infos, principal, tool, args, now)),
        frozenset(name for i in infos for name in i.redact),
    )
