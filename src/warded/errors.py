"""Every exception warded raises, and the stable refusal codes.

A refusal is a return value, not an exception: the call path never raises to
say no. Exceptions are for the operator's mistakes (a broken bundle, a bad
tool declaration) and for the stores' failures, which the gate turns into
refusals.

    WardedError
    ├── BundleError          a policy bundle failed to load, parse or validate
    ├── ToolDefinitionError  a tool was declared wrongly
    ├── ArgumentError        call arguments cannot be frozen or converted
    ├── StoreError           a store could not do what was asked
    ├── ViewError            a tool result has no JSON view (warded.outputs)
    └── ApprovalError        an approval could not be decided (`problem` says why)

A broken audit chain is not an exception:
`verify` returns a `VerifyResult` naming the first bad record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

RefusalCode = Literal[
    "unknown_tool",
    "invalid_arguments",
    "not_permitted",
    "approval_required",
    "limit_exceeded",
    "unavailable",
]
REFUSAL_CODES: tuple[RefusalCode, ...] = get_args(RefusalCode)


class WardedError(Exception):
    """Base class of every warded exception."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bundle, with where it is."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class BundleError(WardedError):
    """A policy bundle was rejected; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in problems) or "invalid bundle")


class ToolDefinitionError(WardedError):
    """A tool declaration is invalid (name, schema, resource rule)."""


class ArgumentError(WardedError):
    """Call arguments cannot be frozen, validated or converted to Cedar values."""


class StoreError(WardedError):
    """A store failed; the gate turns this into an `unavailable` refusal."""


class ViewError(WardedError):
    """A tool result has no canonical JSON view (`warded.outputs.view`); the message says why."""


ApprovalProblem = Literal[
    "not_found",
    "not_pending",
    "expired",
    "self_approval",
    "not_in_group",
    "not_an_approver",
    "not_runnable",
]


class ApprovalError(WardedError):
    """An approval could not be decided; `problem` says why."""

    def __init__(self, problem: ApprovalProblem, message: str) -> None:
        self.problem = problem
        super().__init__(message)
