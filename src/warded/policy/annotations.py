"""Obligation annotations on permit policies: `@approval`, `@rate`, `@budget`.

    @approval("finance")                 an approver group must approve the call
    @rate("20/minute")                   at most 20 calls per principal per minute
    @rate("20/minute per tool")          ... per principal and tool
    @budget("args.amount 500/day")       the sum of args.amount per principal per day
    @redact("secrets, pii")              mask what these output scanners find in the result

Each parses into a value here, so a malformed annotation rejects the bundle,
and so does an annotation whose name looks like one of warded's but is not
(`@aproval`, `@Budget`): left alone it would be ignored, and the permit would
run with no obligation at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

PERIODS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
OBLIGATION_KEYS = ("approval", "rate", "budget", "redact")
KNOWN_KEYS = ("id", "description", "owner", *OBLIGATION_KEYS)
# The entities `@approval` names: `ApproverGroup::"finance"`, and the
# `Approver` entities in it who can decide its approvals.
APPROVER_TYPE = "Approver"
APPROVER_GROUP_TYPE = "ApproverGroup"
MAX_RATE = 10**9
_SCANNER = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

_GROUP = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_RATE = re.compile(r"^\s*([0-9]+)\s*/\s*(second|minute|hour|day)\s*(per tool)?\s*$")
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
    if not m or not 0 < int(m.group(1)) <= MAX_RATE:
        raise ValueError(
            f'@rate must look like "20/minute" or "20/minute per tool" '
            f"(a count from 1 to {MAX_RATE}), got {text!r}"
        )
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


def lookalike(key: str) -> str | None:
    """The warded annotation `key` is probably a misspelling of, or None.

    Within one edit (two for names of six letters or more) of a known name,
    ignoring case, `_` and `-`; an exact known name is not a look-alike.
    """
    if key in KNOWN_KEYS:
        return None
    folded = key.lower().replace("_", "").replace("-", "")
    for known in KNOWN_KEYS:
        allowed = 2 if len(known) >= 6 else 1 if len(known) >= 4 else 0
        if _edits(folded, known) <= allowed:
            return known
    return None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swaps."""
    if abs(len(a) - len(b)) > 2:
        return 3
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]
