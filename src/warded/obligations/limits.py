"""Rate and budget limits as reservations against fixed windows.

A permit's `@rate("20/minute")` counts calls per principal (or per principal
and tool) and `@budget("args.amount 500/day")` sums an argument per
principal, each in fixed windows aligned to the UTC epoch (a day is a UTC
calendar day). Each limit gets its own counter, named after the policy that
declares it. The gate reserves every applicable amount in the same store
transaction that records the decision, so concurrent calls can never
overspend. A budget counts what may have been spent: a call that never ran
gives its amount back, and so does a tool declared `atomic` when it raises;
any other tool that raised keeps it (its side effect may have happened). A
rate counts attempts: a slot stays used whatever the tool did, so failing
calls (a password guess, say) are limited too; only a call that never ran
returns its slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from warded.errors import ArgumentError
from warded.policy.bundle import PolicyInfo


@dataclass(frozen=True, slots=True)
class Reservation:
    """An amount to add to one counter in one window, if the total stays within the limit."""

    key: str
    window: int
    amount: Decimal
    limit: Decimal
    kind: str = "budget"  # "rate" or "budget"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "window": self.window,
            "amount": str(self.amount),
            "limit": str(self.limit),
        }


def reservations(
    infos: list[PolicyInfo], principal: str, tool: str, args: Mapping[str, Any], now: float
) -> list[Reservation]:
    """What the determining permits' `@rate` and `@budget` annotations reserve for one call."""
    out: list[Reservation] = []
    for info in infos:
        if info.rate is not None:
            key = f"rate|{info.id}|{principal}"
            if info.rate.scope == "principal_tool":
                key += f"|{tool}"
            period = info.rate.period
            window = int(now // period) * period
            out.append(Reservation(key, window, Decimal(1), Decimal(info.rate.limit), "rate"))
        if info.budget is not None:
            period = info.budget.period
            amount = _amount(args, info.budget.path[1:])
            out.append(
                Reservation(
                    f"budget|{info.id}|{principal}",
                    int(now // period) * period,
                    amount,
                    info.budget.limit,
                )
            )
    return out


def _amount(args: Mapping[str, Any], path: tuple[str, ...]) -> Decimal:
    value: Any = args
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            raise ArgumentError(f"budget argument args.{'.'.join(path)} is missing")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentError(f"budget argument args.{'.'.join(path)} is not a number")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ArgumentError("budget argument is not a finite number") from None
    if not amount.is_finite() or amount < 0:
        raise ArgumentError(f"budget argument args.{'.'.join(path)} must be a non-negative number")
    return amount
