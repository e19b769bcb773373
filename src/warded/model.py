"""Plain data: principals, sessions, decisions, refusals, tool listings."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from warded.errors import RefusalCode


@dataclass(frozen=True, slots=True)
class Principal:
    """The acting agent: a Cedar entity (`Agent::"billing-bot"`)."""

    type: str
    id: str

    @classmethod
    def agent(cls, agent_id: str) -> Principal:
        return cls("Agent", agent_id)

    def __str__(self) -> str:
        return f"{self.type}::{json.dumps(self.id)}"

    @classmethod
    def parse(cls, text: str) -> Principal:
        """The inverse of `str(principal)`: `Type::"id"`, the id JSON-quoted."""
        head, sep, rest = text.partition('::"')
        try:
            entity_id = json.loads('"' + rest) if sep else None
        except ValueError:
            entity_id = None
        if not head or not isinstance(entity_id, str):
            raise ValueError(f"not a principal: {text!r}")
        return cls(head, entity_id)

    def uid(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


MAX_SESSION_ID = 256


class Session:
    """A handle on one run of an agent: its id. Cheap to recreate.

    The session's state (labels, the count of decided calls, and what later
    work adds per session) lives in the gate's store under this id, so a new
    handle, another process or another node sees the same state
    (`Gate.session_state`).
    """

    __slots__ = ("id",)

    def __init__(self, session_id: str) -> None:
        if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID:
            raise ValueError(f"a session id is a string of 1 to {MAX_SESSION_ID} characters")
        self.id = session_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Session({self.id!r})"


@dataclass(frozen=True, slots=True)
class SessionState:
    """What the store keeps for a session: its labels (which only ever grow), how
    many calls have been decided in it, and where its remembered sources stand
    (`warded.provenance`): `remembered` counts every source ever added (the
    version of what is remembered), `kept` the characters of those still kept,
    `overflowed` says some content of the session is not remembered (evicted
    by the size bound, or never viewable)."""

    id: str
    labels: frozenset[str] = frozenset()
    calls: int = 0
    remembered: int = 0
    overflowed: bool = False
    kept: int = 0


@dataclass(frozen=True, slots=True)
class Source:
    """One remembered piece of a session's content and where it came from.

    `name` is `user` (or another name the host declares trusted content under),
    `approved`, or `tool:<name>`; `labels` are the labels that content gave
    the session (`untrusted`, ...); `leaves` its strings (a tool result's
    string values, keys and numbers, as the model received them).
    """

    name: str
    labels: tuple[str, ...]
    leaves: tuple[str, ...]

    @property
    def size(self) -> int:
        """What it counts against a session's bound: its characters."""
        return sum(len(leaf) for leaf in self.leaves)


@dataclass(frozen=True, slots=True)
class Remembered:
    """A session's remembered sources as a store returns them: `entries` are
    (sequence number, source), oldest first, those after the `after` asked for;
    `first` is the sequence number of the oldest one still kept (older ones
    were evicted); `version` and `overflowed` as in `SessionState`."""

    version: int
    overflowed: bool
    first: int
    entries: tuple[tuple[int, Source], ...]


Mode = Literal["enforce", "shadow"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy engine said about one request.

    `allowed` is true only for a clean Allow: Cedar said Allow and reported no
    evaluation error. `policies` are the determining policy ids; `errors` the
    engine's diagnostics.
    """

    allowed: bool
    policies: tuple[str, ...]
    errors: tuple[str, ...]
    bundle_version: str
    mode: Mode = "enforce"


Kind = Literal["safety", "capability"]

_MESSAGES: Mapping[RefusalCode, tuple[Kind, str]] = {
    "unknown_tool": ("capability", "No tool by that name is available."),
    "invalid_arguments": ("capability", "The arguments do not match the tool's parameters."),
    "not_permitted": ("safety", "This call is not permitted by policy."),
    "approval_required": ("safety", "This call needs human approval before it can run."),
    "limit_exceeded": ("safety", "A rate or budget limit for this call has been reached."),
    "unavailable": ("capability", "The call could not be authorized right now and did not run."),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """The structured answer an agent gets instead of a result.

    The message is fixed per code. `policy` is the public id of the policy that
    determined a denial, when one did; `detail` names the parameter and the
    constraint an invalid argument broke, never its value; `ref` is the audit
    record id.
    """

    code: RefusalCode
    ref: str
    policy: str | None = None
    detail: str | None = None
    approval_id: str | None = None
    refused: Literal[True] = field(default=True, init=False)

    @property
    def kind(self) -> Kind:
        return _MESSAGES[self.code][0]

    @property
    def message(self) -> str:
        return _MESSAGES[self.code][1]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "refused": True,
            "code": self.code,
            "kind": self.kind,
            "message": self.message,
            "policy": self.policy,
            "ref": self.ref,
        }
        if self.detail is not None:
            out["detail"] = self.detail
        if self.approval_id is not None:
            out["approval_id"] = self.approval_id
        return out

    def to_model(self) -> str:
        """The JSON text an agent loop hands back to the model as the tool result."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as listed to a model: name, description, JSON Schema of the arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    effect: str


@dataclass(frozen=True, slots=True)
class ToolFailure:
    """The answer when an authorized tool raised: the call ran and failed; `ref` has the story."""

    ref: str
    message: str = "The tool failed while running."

    def to_dict(self) -> dict[str, Any]:
        return {"error": True, "message": self.message, "ref": self.ref}

    def to_model(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
