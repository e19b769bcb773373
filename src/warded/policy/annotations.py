"""Obligation annotations on permit policies: `@approval`, `@rate`, `@budget`.

    @approval("finance")                 an approver group must approve the call
    @rate("20/minute")                   at most 20 calls per principal per minute
    @rate("20/minute per tool")          ... per principal and tool
    @budget("args.amount 500/day")       the sum of args.amount per principal per day
    @redact("secrets, pii")              mask what these output scanners find in the result

Each parses into a value here, so a malformed annotation rejects the bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

PERIODS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
OBLIGATION_KEYS = ("approval", "rate", "budget", "redact")
_SCANNER = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

_GROUP = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*(per tool)?\s*$")
_BUDGET = re.compile(
    r"^\s*(args(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s+([0-9]+(?:\.[0-9]+)?)\s*/\s*(second|minute|hour|day)\s*$"
)


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period: int
    scope: Literal["principal", "principal_tool"]

    def __str__(self) -> str:
        unit = next(k for k, v in PERIODS.items() if v == self.period)
        return f"{self.limit}/{unit}" + (" per tool" if self.scope == "principal_tool" else "")


@dataclass(frozen=True, slots=True)
class Budget:
    path: tuple[str, ...]
    limit: Decimal
    period: int

    def __str__(self) -> str:
        unit = next(k for k, v in PERIODS.items() if v == self.period)
        return f"{'.'.join(self.path)} {self.limit}/{unit}"


def parse_approval(text: str) -> str:
    if not _GROUP.match(text):
        raise ValueError(f"@approval needs an approver group name, got {text!r}")
    return text


def parse_rate(text: str) -> Rate:
    m = _RATE.match(text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f'@rate must look like "20/minute" or "20/minute per tool", got {text!r}')
    scope: Literal["principal", "principal_tool"] = "principal_tool" if m.group(3) else "principal"
    return Rate(int(m.group(1)), PERIODS[m.group(2)], scope)


def parse_budget(text: str) -> Budget:
    m = _BUDGET.match(text)
    if not m:
        raise ValueError(f'@budget must look like "args.amount 500/day", got {text!r}')
    try:
        limit = Decimal(m.group(2))
    except InvalidOperation:
        raise ValueError(f"@budget limit is not a number: {m.group(2)!r}") from None
    if limit <= 0:
        raise ValueError(f"@budget limit must be positive, got {text!r}")
    return Budget(tuple(m.group(1).split(".")), limit, PERIODS[m.group(3)])


def parse_redact(text: str) -> tuple[str, ...]:
    names = tuple(sorted({n.strip() for n in text.split(",")}))
    if not names or not all(_SCANNER.match(n) for n in names):
        raise ValueError(f'@redact names output scanners, e.g. "secrets, pii"; got {text!r}')
    return names
