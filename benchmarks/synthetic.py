"""A deterministic synthetic policy bundle and request mix for the benchmarks.

The bundle has 20 agents in 4 teams, 50 tools (40 of them in 5 action groups),
and N policies drawn from one seeded stream, so the N-policy bundle is the
first N policies of the same stream at every scale. Every tool takes the same
three typed arguments: `amount` (a Cedar `decimal`, a JSON Schema `number`),
`target` (a String) and `count` (a Long).

Each rule exists twice: as Cedar text (what warded and cedarpy evaluate) and as
Python predicates (the plain-Python floor), so the two can be checked against
each other on every request.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

TEAMS: tuple[str, ...] = ("payments", "support", "research", "ops")
AGENTS: tuple[str, ...] = tuple(f"agent_{i:02d}" for i in range(20))
TEAM_OF: Mapping[str, str] = {a: TEAMS[i % len(TEAMS)] for i, a in enumerate(AGENTS)}
TOOLS: tuple[str, ...] = tuple(f"tool_{i:02d}" for i in range(50))
GROUPS: tuple[str, ...] = ("grp_read", "grp_write", "grp_pay", "grp_admin", "grp_comms")
# Tools 0..39 belong to one group each (8 per group); tools 40..49 are ungrouped.
GROUP_OF: Mapping[str, str | None] = {
    t: (GROUPS[i // 8] if i < 40 else None) for i, t in enumerate(TOOLS)
}
LABELS: tuple[str, ...] = ("untrusted", "pii")
TARGET_PREFIXES: tuple[str, ...] = ("int-", "ext-", "acct-")

# The argument schema every synthetic tool is registered with (JSON Schema).
TOOL_PARAMETERS: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "target": {"type": "string", "maxLength": 64},
        "count": {"type": "integer", "minimum": 0},
    },
    "required": ["amount", "target", "count"],
    "additionalProperties": False,
}

Args = Mapping[str, Any]
Predicate = Callable[[Args, frozenset[str], int], bool]
CondKind = Literal[
    "amount_lt", "amount_gt", "count_le", "count_gt", "hour_in", "hour_out", "target_like", "label"
]


@dataclass(frozen=True, slots=True)
class Cond:
    """One conjunct of a policy's `when` clause."""

    kind: CondKind
    value: Any

    def cedar(self) -> str:
        k, v = self.kind, self.value
        if k == "amount_lt":
            return f'context.args.amount.lessThan(decimal("{v}.0"))'
        if k == "amount_gt":
            return f'context.args.amount.greaterThan(decimal("{v}.0"))'
        if k == "count_le":
            return f"context.args.count <= {v}"
        if k == "count_gt":
            return f"context.args.count > {v}"
        if k == "hour_in":
            return f"(context.now.hour >= {v[0]} && context.now.hour < {v[1]})"
        if k == "hour_out":
            return f"(context.now.hour < {v[0]} || context.now.hour >= {v[1]})"
        if k == "target_like":
            return f'context.args.target like "{v}*"'
        return f'context.session.labels.contains("{v}")'

    def predicate(self) -> Predicate:
        """The same condition, hand-written in Python (the floor's rule body)."""
        k, v = self.kind, self.value
        if k == "amount_lt":
            return lambda a, labels, hour: a["amount"] < v
        if k == "amount_gt":
            return lambda a, labels, hour: a["amount"] > v
        if k == "count_le":
            return lambda a, labels, hour: a["count"] <= v
        if k == "count_gt":
            return lambda a, labels, hour: a["count"] > v
        if k == "hour_in":
            lo, hi = v
            return lambda a, labels, hour: lo <= hour < hi
        if k == "hour_out":
            lo, hi = v
            return lambda a, labels, hour: hour < lo or hour >= hi
        if k == "target_like":
            return lambda a, labels, hour: a["target"].startswith(v)
        return lambda a, labels, hour: v in labels


@dataclass(frozen=True, slots=True)
class Rule:
    """One synthetic policy."""

    id: str
    effect: Literal["permit", "forbid"]
    principal: tuple[str, str] | None  # ("Agent", id), ("Team", id) or None (any principal)
    action: tuple[Literal["tool", "group"], str]
    conditions: tuple[Cond, ...] = field(default=())

    def cedar(self) -> str:
        if self.principal is None:
            p = "principal"
        elif self.principal[0] == "Agent":
            p = f'principal == Agent::"{self.principal[1]}"'
        else:
            p = f'principal in Team::"{self.principal[1]}"'
        kind, name = self.action
        a = f'action == Action::"{name}"' if kind == "tool" else f'action in Action::"{name}"'
        head = f'@id("{self.id}")\n{self.effect} ({p}, {a}, resource)'
        if not self.conditions:
            return head + ";\n"
        body = " &&\n  ".join(c.cedar() for c in self.conditions)
        return f"{head}\nwhen {{\n  {body}\n}};\n"

    def predicate(self) -> Predicate:
        preds = tuple(c.predicate() for c in self.conditions)
        if not preds:
            return lambda a, labels, hour: True
        if len(preds) == 1:
            return preds[0]
        if len(preds) == 2:
            p0, p1 = preds
            return lambda a, labels, hour: p0(a, labels, hour) and p1(a, labels, hour)
        return lambda a, labels, hour: all(p(a, labels, hour) for p in preds)


def _permit_conditions(rng: random.Random) -> tuple[Cond, ...]:
    pool: list[Cond] = [
        Cond("amount_lt", rng.choice((50, 100, 250, 500, 1000, 1500))),
        Cond("count_le", rng.choice((10, 100, 250, 500, 900))),
        Cond("hour_in", rng.choice(((6, 20), (8, 18), (0, 12), (12, 24)))),
        Cond("target_like", rng.choice(TARGET_PREFIXES)),
    ]
    k = rng.choice((0, 1, 1, 2, 2, 3))
    return tuple(sorted(rng.sample(pool, k), key=lambda c: c.kind))


def _forbid(i: int, rng: random.Random) -> Rule:
    """A forbid: a session-label guard (often for everyone), or an argument, time or
    outright ban scoped to a team or an agent."""
    r = rng.random()
    principal: tuple[str, str] | None
    if r < 0.45:
        cond: tuple[Cond, ...] = (Cond("label", rng.choice(LABELS)),)
        principal = None if rng.random() < 0.7 else ("Team", rng.choice(TEAMS))
    elif r < 0.95:
        if r < 0.65:
            cond = (Cond("amount_gt", rng.choice((1000, 1500, 1800))),)
        elif r < 0.80:
            cond = (Cond("count_gt", rng.choice((500, 800, 950))),)
        else:
            cond = (Cond("hour_out", rng.choice(((6, 22), (7, 20)))),)
        principal = ("Team", rng.choice(TEAMS)) if rng.random() < 0.5 else _agent(rng)
    else:  # an unconditional ban of one tool for one agent
        return Rule(f"r{i:05d}", "forbid", _agent(rng), ("tool", rng.choice(TOOLS)))
    action: tuple[Literal["tool", "group"], str] = (
        ("group", rng.choice(GROUPS)) if rng.random() < 0.5 else ("tool", rng.choice(TOOLS))
    )
    return Rule(f"r{i:05d}", "forbid", principal, action, cond)


def _agent(rng: random.Random) -> tuple[str, str]:
    return ("Agent", rng.choice(AGENTS))


def generate_rules(n: int, seed: int = 1) -> list[Rule]:
    """The first `n` rules of the seeded stream (same seed → same prefix at every scale)."""
    rng = random.Random(seed)
    rules: list[Rule] = []
    for i in range(n):
        forbid = i % 10 == 9
        if forbid:
            rules.append(_forbid(i, rng))
        else:
            principal: tuple[str, str] = (
                _agent(rng) if rng.random() < 0.65 else ("Team", rng.choice(TEAMS))
            )
            action: tuple[Literal["tool", "group"], str] = (
                ("tool", rng.choice(TOOLS))
                if rng.random() < 0.75
                else ("group", rng.choice(GROUPS))
            )
            rules.append(Rule(f"r{i:05d}", "permit", principal, action, _permit_conditions(rng)))
    return rules


def schema_text() -> str:
    lines = [
        "// Synthetic benchmark schema: the context shape warded provides to every action.",
        "type Session = { id: String, labels: Set<String>, calls: Long };",
        "type Now = { epoch: Long, hour: Long, weekday: Long };",
        "type Args = { amount: decimal, target: String, count: Long };",
        "",
        "entity Team;",
        "entity Agent in [Team] { role: String };",
        "entity Tool;",
        "",
    ]
    lines += [f"action {g};" for g in GROUPS]
    for t in TOOLS:
        group = GROUP_OF[t]
        member = f" in [{group}]" if group else ""
        lines.append(
            f"action {t}{member} appliesTo {{ principal: [Agent], resource: [Tool], "
            "context: { args: Args, session: Session, now: Now } };"
        )
    return "\n".join(lines) + "\n"


def entities() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"uid": {"type": "Team", "id": t}, "attrs": {}, "parents": []} for t in TEAMS
    ]
    out += [
        {
            "uid": {"type": "Agent", "id": a},
            "attrs": {"role": f"{TEAM_OF[a]} assistant"},
            "parents": [{"type": "Team", "id": TEAM_OF[a]}],
        }
        for a in AGENTS
    ]
    out += [{"uid": {"type": "Tool", "id": t}, "attrs": {}, "parents": []} for t in TOOLS]
    return out


def write_bundle(directory: Path, rules: list[Rule]) -> Path:
    """Write `rules` as a bundle directory (permits.cedar, forbids.cedar, schema, entities)."""
    directory.mkdir(parents=True, exist_ok=True)
    permits = "\n".join(r.cedar() for r in rules if r.effect == "permit")
    forbids = "\n".join(r.cedar() for r in rules if r.effect == "forbid")
    (directory / "permits.cedar").write_text(permits or "// none\n", encoding="utf-8")
    if forbids:
        (directory / "forbids.cedar").write_text(forbids, encoding="utf-8")
    (directory / "schema.cedarschema").write_text(schema_text(), encoding="utf-8")
    (directory / "entities.json").write_text(json.dumps(entities(), indent=1), encoding="utf-8")
    return directory


class Floor:
    """The plain-Python floor: rules indexed by (principal key, action key) → predicates.

    Deny wins: any matching forbid denies; otherwise any matching permit allows.
    """

    def __init__(self, rules: list[Rule]) -> None:
        index: dict[tuple[str, str], tuple[list[Predicate], list[Predicate]]] = {}
        for r in rules:
            pkey = "*" if r.principal is None else r.principal[1]
            forbids, permits = index.setdefault((pkey, r.action[1]), ([], []))
            (forbids if r.effect == "forbid" else permits).append(r.predicate())
        self._index = {k: (tuple(f), tuple(p)) for k, (f, p) in index.items()}
        self._pkeys = {a: (a, TEAM_OF[a], "*") for a in AGENTS}
        self._akeys = {t: (t, g) if (g := GROUP_OF[t]) else (t,) for t in TOOLS}

    def decide(self, agent: str, tool: str, args: Args, labels: frozenset[str], hour: int) -> bool:
        index = self._index
        matched: list[tuple[Predicate, ...]] = []
        for pk in self._pkeys[agent]:
            for ak in self._akeys[tool]:
                entry = index.get((pk, ak))
                if entry is None:
                    continue
                for f in entry[0]:
                    if f(args, labels, hour):
                        return False
                matched.append(entry[1])
        return any(p(args, labels, hour) for permits in matched for p in permits)


@dataclass(frozen=True, slots=True)
class Request:
    agent: str
    tool: str
    args: Mapping[str, Any]
    labels: frozenset[str]


def make_requests(
    count: int,
    seed: int,
    pairs: list[tuple[str, str]],
    visible_share: float = 0.9,
) -> list[Request]:
    """`count` seeded requests: `visible_share` of them on `pairs` (agent, tool pairs the
    caller knows some policy can permit), the rest on any pair (mostly hidden tools)."""
    rng = random.Random(seed)
    out: list[Request] = []
    for _ in range(count):
        if pairs and rng.random() < visible_share:
            agent, tool = rng.choice(pairs)
        else:
            agent, tool = rng.choice(AGENTS), rng.choice(TOOLS)
        amount = round(rng.uniform(0, 2000), 2)
        target = rng.choice(TARGET_PREFIXES) + str(rng.randint(1, 9999))
        n = rng.randint(0, 1000)
        r = rng.random()
        labels = frozenset({"untrusted"} if r < 0.25 else {"pii"} if r < 0.35 else set())
        out.append(Request(agent, tool, {"amount": amount, "target": target, "count": n}, labels))
    return out
