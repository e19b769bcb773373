"""Hypothesis strategies: random Cedar policy sets and requests over a fixed small world.

The world: agents and bots in nested groups, five tool actions in nested
action groups, every action's context in warded's shape. Policies combine
permit/forbid with every principal and action scope form and conditions on
arguments, the session, the time and principal attributes; a few conditions
error at run time (Long overflow, an attribute of an entity not in the store).

Test modules `import policy_strategies as gen` (pytest puts tests/ on the path).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hypothesis import strategies as st

from support import session_with
from warded import BundleFiles, Gate, PolicyBundle, Principal, Session, SessionState
from warded.policy.values import to_cedar
from warded.request import build_context

SCHEMA = """
type Session = { id: String, labels: Set<String>, calls: Long };
type Now = { epoch: Long, hour: Long, weekday: Long };
type Args = { n: Long, amount: decimal, who: String, note?: String };
type Ctx = { args: Args, session: Session, now: Now };

entity Group in [Group];
entity Agent in [Group] { level: Long, dept: String };
entity Bot in [Group] { level: Long, dept: String };
entity Tool;
entity ApproverGroup;
entity Approver in [ApproverGroup];

action everything;
action reads in [everything];
action writes in [everything];
action read_a, read_b in [reads]
  appliesTo { principal: [Agent, Bot], resource: [Tool], context: Ctx };
action write_a in [writes]
  appliesTo { principal: [Agent, Bot], resource: [Tool], context: Ctx };
action write_b in [writes, reads]
  appliesTo { principal: [Agent, Bot], resource: [Tool], context: Ctx };
action admin
  appliesTo { principal: [Agent, Bot], resource: [Tool], context: Ctx };
"""


def _entity(kind: str, uid: str, parents: Sequence[str] = (), **attrs: Any) -> dict[str, Any]:
    return {
        "uid": {"type": kind, "id": uid},
        "attrs": attrs,
        "parents": [{"type": "Group", "id": p} for p in parents],
    }


ENTITIES = [
    _entity("Group", "all"),
    _entity("Group", "eng", ["all"]),
    _entity("Group", "ops", ["eng"]),
    _entity("Group", "fin", ["all"]),
    _entity("Agent", "alice", ["ops"], level=3, dept="eng"),
    _entity("Agent", "bob", ["fin"], level=1, dept="fin"),
    _entity("Agent", "carol", ["eng", "fin"], level=5, dept="eng"),
    _entity("Bot", "bot1", ["ops"], level=0, dept="ops"),
    _entity("Bot", "bot2", [], level=2, dept="ops"),
]


def with_approvers(*groups: str) -> str:
    """ENTITIES_TEXT plus an approver group of each name, each with one member."""
    extra: list[dict[str, Any]] = []
    for k, group in enumerate(groups):
        extra.append({"uid": {"type": "ApproverGroup", "id": group}, "attrs": {}, "parents": []})
        extra.append(
            {
                "uid": {"type": "Approver", "id": f"approver-{k}"},
                "attrs": {},
                "parents": [{"type": "ApproverGroup", "id": group}],
            }
        )
    return json.dumps(ENTITIES + extra, indent=1)


ENTITIES_TEXT = with_approvers("finance")

GROUPS = ("all", "eng", "ops", "fin")
KNOWN = (
    Principal("Agent", "alice"),
    Principal("Agent", "bob"),
    Principal("Agent", "carol"),
    Principal("Bot", "bot1"),
    Principal("Bot", "bot2"),
)
STRANGER = Principal("Agent", "mallory")  # a valid type, but not in the entity store
PRINCIPALS = (*KNOWN, STRANGER)
TOOLS = ("read_a", "read_b", "write_a", "write_b", "admin")
ACTION_GROUPS = ("everything", "reads", "writes")
LABELS = ("untrusted", "pii")
WHO = ("alice", "bob", "x")

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "n": {"type": "integer"},
        "amount": {"type": "number"},
        "who": {"type": "string"},
        "note": {"type": "string"},
    },
    "required": ["n", "amount", "who"],
    "additionalProperties": False,
}

MIDNIGHT = 1_767_225_600  # 2026-01-01T00:00:00Z
OVERFLOW_N = 10_000_000  # n * 10^12 overflows a 64-bit Long; below 2^53, so JSON-safe
OVERFLOWING = "context.args.n * 1000000000000 > 5"


# -- policies ------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    effect: str
    principal: str = "principal"
    action: str = "action"
    resource: str = "resource"
    clauses: tuple[str, ...] = ()

    def text(self, pid: str, extra: str = "") -> str:
        body = ",\n  ".join((self.principal, self.action, self.resource))
        clauses = "".join(f"\n{c}" for c in self.clauses)
        return f'@id("{pid}"){extra}\n{self.effect} (\n  {body}\n){clauses};\n'


def uid(kind: str, name: str) -> str:
    return f'{kind}::"{name}"'


def _principal_scopes() -> st.SearchStrategy[str]:
    member = st.sampled_from([uid(p.type, p.id) for p in PRINCIPALS])
    group = st.sampled_from([uid("Group", g) for g in GROUPS])
    kind = st.sampled_from(["Agent", "Bot"])
    return st.one_of(
        st.just("principal"),
        member.map(lambda u: f"principal == {u}"),
        st.one_of(group, member).map(lambda u: f"principal in {u}"),
        kind.map(lambda k: f"principal is {k}"),
        st.tuples(kind, group).map(lambda kg: f"principal is {kg[0]} in {kg[1]}"),
    )


def _action_scopes() -> st.SearchStrategy[str]:
    tool = st.sampled_from([uid("Action", t) for t in TOOLS])
    any_action = st.sampled_from([uid("Action", a) for a in (*TOOLS, *ACTION_GROUPS)])
    return st.one_of(
        st.just("action"),
        tool.map(lambda u: f"action == {u}"),
        any_action.map(lambda u: f"action in {u}"),
        st.lists(any_action, min_size=1, max_size=3, unique=True).map(
            lambda us: f"action in [{', '.join(us)}]"
        ),
    )


def _resource_scopes() -> st.SearchStrategy[str]:
    return st.one_of(
        st.just("resource"),
        st.just("resource"),
        st.just("resource is Tool"),
        st.sampled_from(TOOLS).map(lambda t: f"resource == {uid('Tool', t)}"),
    )


def _safe_conditions() -> st.SearchStrategy[str]:
    """Conditions that never error for any request the generator makes."""
    op = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    cents = st.integers(0, 3000).map(lambda c: f"{c // 100}.{c % 100:02d}")
    return st.one_of(
        st.tuples(op, st.integers(-3, 15)).map(lambda t: f"context.args.n {t[0]} {t[1]}"),
        st.tuples(st.sampled_from(["lessThan", "greaterThanOrEqual"]), cents).map(
            lambda t: f'context.args.amount.{t[0]}(decimal("{t[1]}"))'
        ),
        st.sampled_from(WHO).map(lambda w: f'context.args.who == "{w}"'),
        st.just('context.args has note && context.args.note == "x"'),
        st.sampled_from(LABELS).map(lambda lb: f'context.session.labels.contains("{lb}")'),
        st.tuples(st.sampled_from([">=", "<"]), st.integers(0, 23)).map(
            lambda t: f"context.now.hour {t[0]} {t[1]}"
        ),
        st.integers(0, 3).map(lambda k: f"context.session.calls < {k}"),
        st.sampled_from(GROUPS).map(lambda g: f"principal in {uid('Group', g)}"),
        st.sampled_from(TOOLS).map(lambda t: f"resource == {uid('Tool', t)}"),
    )


def _erroring_conditions() -> st.SearchStrategy[str]:
    """Conditions that can error: Long overflow; attributes of an entity not in the store."""
    return st.one_of(
        st.just(OVERFLOWING),
        st.integers(0, 5).map(lambda k: f"principal.level >= {k}"),
        st.sampled_from(["eng", "ops", "fin"]).map(lambda d: f'principal.dept == "{d}"'),
    )


def conditions(safe: bool = False) -> st.SearchStrategy[str]:
    if safe:
        return _safe_conditions()
    return st.one_of(_safe_conditions(), _safe_conditions(), _erroring_conditions())


def clauses(safe: bool = False) -> st.SearchStrategy[tuple[str, ...]]:
    clause = st.tuples(
        st.sampled_from(["when", "when", "unless"]),
        st.lists(conditions(safe), min_size=1, max_size=2),
    ).map(lambda t: f"{t[0]} {{ {' && '.join(t[1])} }}")
    return st.lists(clause, max_size=2).map(tuple)


def policies(
    effect: str | None = None, safe: bool = False, unconditional: bool = False
) -> st.SearchStrategy[Policy]:
    effects = st.just(effect) if effect else st.sampled_from(["permit", "permit", "forbid"])
    return st.builds(
        Policy,
        effect=effects,
        principal=_principal_scopes(),
        action=_action_scopes(),
        resource=_resource_scopes(),
        clauses=st.just(()) if unconditional else clauses(safe),
    )


def policy_lists(
    min_size: int = 0, max_size: int = 8, **kwargs: Any
) -> st.SearchStrategy[list[Policy]]:
    return st.lists(policies(**kwargs), min_size=min_size, max_size=max_size)


# -- bundles -------------------------------------------------------------------


def policy_text(policies: Sequence[Policy], ids: Sequence[str] | None = None) -> str:
    ids = ids if ids is not None else [f"p{k}" for k in range(len(policies))]
    return "\n".join(p.text(i) for p, i in zip(policies, ids, strict=True))


def bundle_files(
    policies: Sequence[Policy],
    ids: Sequence[str] | None = None,
    split: int | None = None,
) -> BundleFiles:
    """The policies as one or two files (the first `split` in a.cedar, the rest in b.cedar)."""
    ids = list(ids) if ids is not None else [f"p{k}" for k in range(len(policies))]
    cut = len(policies) if split is None else split
    files = [("a.cedar", policy_text(policies[:cut], ids[:cut]))]
    if cut < len(policies):
        files.append(("b.cedar", policy_text(policies[cut:], ids[cut:])))
    return BundleFiles(
        tuple(files), ("schema.cedarschema", SCHEMA), ("entities.json", ENTITIES_TEXT)
    )


def load(policies: Sequence[Policy], **kwargs: Any) -> PolicyBundle:
    return PolicyBundle.load(bundle_files(policies, **kwargs))


# -- requests ------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    principal: Principal
    tool: str
    args: dict[str, Any] = field(hash=False)
    labels: frozenset[str] = frozenset()
    hour: int = 12
    calls: int = 0

    def session(self, gate: Gate) -> Session:
        return session_with(gate, self.labels, self.calls)

    @property
    def now(self) -> float:
        return float(MIDNIGHT + self.hour * 3600 + 59)

    def context(self) -> dict[str, Any]:
        state = SessionState("s-1", self.labels, self.calls)
        return build_context(to_cedar(self.args, PARAMETERS), state, self.now)

    def resource(self) -> dict[str, str]:
        return {"type": "Tool", "id": self.tool}

    def cedar(self) -> dict[str, Any]:
        """The request as `cedarpy.is_authorized` takes it."""
        return {
            "principal": self.principal.uid(),
            "action": {"type": "Action", "id": self.tool},
            "resource": self.resource(),
            "context": self.context(),
        }


def arguments(overflow: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    n = st.integers(-5, 20)
    if overflow:
        n = st.one_of(n, n, n, st.just(OVERFLOW_N))
    return st.builds(
        lambda n, cents, who, note: {
            "n": n,
            "amount": cents / 100,
            "who": who,
            **({"note": note} if note is not None else {}),
        },
        n,
        st.integers(0, 3000),
        st.sampled_from(WHO),
        st.one_of(st.none(), st.sampled_from(["x", "y"])),
    )


def requests(
    principals: Sequence[Principal] = PRINCIPALS,
    tools: Sequence[str] = TOOLS,
    overflow: bool = True,
) -> st.SearchStrategy[Request]:
    return st.builds(
        Request,
        principal=st.sampled_from(list(principals)),
        tool=st.sampled_from(list(tools)),
        args=arguments(overflow),
        labels=st.frozensets(st.sampled_from(LABELS)),
        hour=st.integers(0, 23),
        calls=st.integers(0, 3),
    )


# -- gates ---------------------------------------------------------------------


def register_tools(gate: Any, executed: list[tuple[str, dict[str, Any]]]) -> None:
    """Register every generated tool on `gate`; each run is appended to `executed`."""
    for name in TOOLS:

        def run(_name: str = name, **kwargs: Any) -> str:
            executed.append((_name, kwargs))
            return f"{_name} ran"

        gate.register(name, PARAMETERS, run, description=f"the {name} tool")


def register_banking_tools(gate: Any, executed: list[tuple[str, dict[str, Any]]]) -> None:
    """The banking example's tools (examples/banking), recording each run in `executed`."""

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> dict[str, Any]:
        executed.append(("send_money", {"recipient": recipient, "amount": amount}))
        return {"status": "sent"}

    @gate.tool
    def get_balance() -> float:
        executed.append(("get_balance", {}))
        return 100.0

    @gate.tool
    def get_transactions(limit: int = 10) -> list[int]:
        executed.append(("get_transactions", {"limit": limit}))
        return list(range(limit))

    @gate.tool(effect="external")
    def read_document(path: str) -> str:
        executed.append(("read_document", {"path": path}))
        return "text"

    @gate.tool(effect="write", sensitive=["password"])
    def update_password(password: str) -> str:
        executed.append(("update_password", {}))
        return "changed"


# -- random worlds: schemas, entity graphs, policies and requests ---------------
#
# For the differential test of the compiled path (G19): everything random,
# including the schema. A world is built from one seed with `random.Random`
# (hypothesis draws the seed): a world makes thousands of choices, more than
# hypothesis's own choice sequence holds, which would leave only the smallest
# worlds. Types are small tuples: "Long", "Bool", "String", "decimal",
# ("set", T), ("rec", ((name, T, required), ...)), ("ent", name).

WORLD_TYPES = ("E0", "E1", "E2")
WORLD_IDS = ("a", "b", "")
# small values, often equal to a policy constant (boundaries), and the ends of the range
WORLD_LONGS = (0, 1, 1, 2, 2, 7, -1, 2**62, -(2**63), 2**63 - 1)
WORLD_STRINGS = ("", "a", "ab", "ba", "a*b", "\u00e9")
WORLD_DECIMALS = ("0.0", "1.5", "1.5000", "-2.25", "0.0001", "922337203685477.5807", "-0.5")
WORLD_PATTERNS = ('"a*"', '"*b"', '"a\\*b"', '"*"', '""', '"a*b*"', '"\u00e9"')
# every context has these (and some random attributes besides)
WORLD_CONTEXT = (
    ("cn", "Long", True),
    ("cb", "Bool", True),
    ("cs", "String", True),
    ("cd", "decimal", True),
    ("ce", ("ent", "E0"), True),
    ("cl", ("set", "Long"), True),
    ("co", "Long", False),
)


@dataclass(frozen=True)
class World:
    """A random schema, entity store, policy text and requests."""

    seed: int
    schema: str
    entities: list[dict[str, Any]] = field(hash=False)
    policies: str
    requests: list[dict[str, Any]] = field(hash=False)


def _type_text(t: Any) -> str:
    if isinstance(t, str):
        return t
    if t[0] == "set":
        return f"Set<{_type_text(t[1])}>"
    if t[0] == "ent":
        return t[1]
    fields = ", ".join(f"{n}{'' if req else '?'}: {_type_text(ft)}" for n, ft, req in t[1])
    return f"{{{fields}}}"


def _kind_of(t: Any) -> str:
    simple = {"Long": "long", "Bool": "bool", "String": "str", "decimal": "dec"}
    if isinstance(t, str):
        return simple[t]
    return {"ent": "ent", "set": "set", "rec": "rec"}[t[0]]


class _World:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, options: Sequence[Any]) -> Any:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # types and values

    def type(self, depth: int = 2) -> Any:
        leaf = self.pick(["Long", "Bool", "String", "decimal", *(("ent", t) for t in WORLD_TYPES)])
        roll = self.rng.random()
        if depth == 0 or roll < 0.6:
            return leaf
        if roll < 0.8:
            return ("set", self.type(depth - 1))
        names = self.rng.sample(["x", "y", "z"], self.rng.randint(0, 3))
        return ("rec", tuple((n, self.type(depth - 1), self.chance(0.75)) for n in names))

    def attrs(self) -> tuple[tuple[str, Any, bool], ...]:
        names = self.rng.sample(["n", "s", "d", "f", "r", "e", "l"], self.rng.randint(0, 4))
        return tuple((n, self.type(), self.chance(0.75)) for n in names)

    def value(self, t: Any) -> Any:
        if t == "Long":
            return self.pick(WORLD_LONGS)
        if t == "Bool":
            return self.chance(0.5)
        if t == "String":
            return self.pick(WORLD_STRINGS)
        if t == "decimal":
            return self.pick(WORLD_DECIMALS)
        if t[0] == "ent":
            return {"type": t[1], "id": self.pick([*WORLD_IDS, "ghost"])}
        if t[0] == "set":
            return [self.value(t[1]) for _ in range(self.rng.randint(0, 2))]
        return {n: self.value(ft) for n, ft, req in t[1] if req or self.chance(0.5)}

    # expressions

    def expr(self, kind: str, depth: int) -> str:
        if self.chance(0.02):  # now and then, the wrong type
            kind = self.pick(["bool", "long", "str", "dec", "ent", "set"])
        grow = getattr(self, f"grow_{kind}", None)
        if depth > 0 and grow is not None and self.chance(0.5):
            return grow(depth - 1)  # type: ignore[no-any-return]
        paths = [p for p, t in self.paths if _kind_of(t) == kind]
        if paths and self.chance(0.5):  # a path half the time: values meet constants
            return self.pick(paths)  # type: ignore[no-any-return]
        return self.pick(self.leaves[kind])  # type: ignore[no-any-return]

    leaves: ClassVar[dict[str, list[str]]] = {
        "bool": ["true", "false"],
        "long": [str(n) for n in WORLD_LONGS if n != -(2**63)],
        "str": [json.dumps(s, ensure_ascii=False) for s in WORLD_STRINGS],
        "dec": [f'decimal("{d}")' for d in WORLD_DECIMALS],
        "ent": ["principal", "resource", *(f'{t}::"{i}"' for t in WORLD_TYPES for i in WORLD_IDS)],
        "set": ["[]", "[1, 2]", '["a", "ab"]', '[E0::"a", E1::"b"]', "[true]", "[1, true]"],
        "rec": ["{}", '{x: 1, y: "a"}'],
    }

    def grow_bool(self, d: int) -> str:
        e = self.expr
        choice = self.pick([*[0] * 6, *[1] * 4, 2, 3, 4, 5, *range(6, 14), 12, 12])
        if choice == 0:
            return f"({e('long', d)} {self.pick(['<', '<=', '>', '>='])} {e('long', d)})"
        if choice == 1:
            kind = self.pick(["long", "str", "ent", "dec", "set", "rec", "bool"])
            other = kind
            if self.chance(0.3):  # across types, Bool and Long most (True == 1 in Python)
                kind, other = self.pick([("bool", "long"), ("long", "bool"), (kind, "set")])
            return f"({e(kind, d)} {self.pick(['==', '!='])} {e(other, d)})"
        if choice == 2:
            return f"({e('bool', d)} && {e('bool', d)})"
        if choice == 3:
            return f"({e('bool', d)} || {e('bool', d)})"
        if choice == 4:
            return f"!{e('bool', d)}"
        if choice == 5:
            return f"(if {e('bool', d)} then {e('bool', d)} else {e('bool', d)})"
        if choice == 6:
            return f"({e('ent', d)} in {e(self.pick(['ent', 'set']), d)})"
        if choice == 7:
            return f"({e('ent', d)} is {self.pick(WORLD_TYPES)})"
        if choice == 8:
            attr = self.pick(["n", "s", "d", "f", "r", "e", "l", "x", "y", "z", "co"])
            return f"({e(self.pick(['ent', 'rec']), d)} has {attr})"
        if choice == 9:
            return f"({e('str', d)} like {self.pick(WORLD_PATTERNS)})"
        if choice == 10:
            method = self.pick(["contains", "containsAll", "containsAny"])
            arg = e(self.pick(["long", "str", "ent"]) if method == "contains" else "set", d)
            return f"{e('set', d)}.{method}({arg})"
        if choice == 11:
            return f"{e('set', d)}.isEmpty()"
        if choice == 12:
            method = self.pick(["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"])
            return f"{e('dec', d)}.{method}({e('dec', d)})"
        return f"({e('ent', d)} is {self.pick(WORLD_TYPES)} in {e('ent', d)})"

    def grow_long(self, d: int) -> str:
        op = self.pick("+-*~")
        if op == "~":
            return f"(-{self.expr('long', d)})"
        return f"({self.expr('long', d)} {op} {self.expr('long', d)})"

    def grow_set(self, d: int) -> str:
        kind = self.pick(["long", "str", "ent"])
        return f"[{', '.join(self.expr(kind, d) for _ in range(self.rng.randint(0, 3)))}]"

    def grow_rec(self, d: int) -> str:
        return f"{{x: {self.expr('long', d)}, y: {self.expr('str', d)}}}"

    def scope(self, var: str) -> str:
        if var == "action":
            return self.pick(  # type: ignore[no-any-return]
                [
                    "action",
                    "action",
                    "action",
                    'action == Action::"act0"',
                    'action in Action::"act1"',
                    'action in [Action::"act0", Action::"group"]',
                ]
            )
        t = self.pick(WORLD_TYPES)
        target = f'{self.pick(WORLD_TYPES)}::"{self.pick(WORLD_IDS)}"'
        return self.pick(  # type: ignore[no-any-return]
            [
                *[var] * 6,  # most policies should apply to most requests
                f"{var} == {target}",
                f"{var} in {target}",
                f"{var} is {t}",
                f"{var} is {t} in {target}",
            ]
        )

    # the world

    def build(self, seed: int, max_policies: int, max_requests: int) -> World:
        types = {t: self.attrs() for t in WORLD_TYPES}
        # E0 in E1 in E2, plus now and then another edge: `in` must use the closure
        parents = {
            t: sorted({*up, *([self.pick(WORLD_TYPES)] if self.chance(0.3) else [])})
            for t, up in zip(WORLD_TYPES, (["E1"], ["E2"], []), strict=True)
        }
        context = ("rec", WORLD_CONTEXT + self.attrs())
        # E0 is usually the principal and resource type: conditions read E0's attributes
        principals = ["E0", self.pick(WORLD_TYPES)] if self.chance(0.8) else ["E1"]
        resources = ["E0", self.pick(WORLD_TYPES)] if self.chance(0.8) else ["E2"]
        applies = (
            f"appliesTo {{ principal: [{', '.join(sorted(set(principals)))}], "
            f"resource: [{', '.join(sorted(set(resources)))}], context: {_type_text(context)} }}"
        )
        schema = ""
        for t in WORLD_TYPES:
            ups = f" in [{', '.join(parents[t])}]" if parents[t] else ""
            schema += f"entity {t}{ups} = {_type_text(('rec', types[t]))};\n"
        schema += f"action group;\naction act0 in [group] {applies};\naction act1 {applies};\n"
        uids = [
            (t, i)
            for t in reversed(WORLD_TYPES)  # E2 first: parents come before children, no cycle
            for i in self.rng.sample(WORLD_IDS, self.rng.randint(1 if t == "E0" else 0, 3))
        ]
        entities = []
        for k, (t, i) in enumerate(uids):
            allowed = [u for u in uids[:k] if u[0] in parents[t]]
            ups = self.rng.sample(allowed, min(len(allowed), self.rng.randint(0, 2)))
            entities.append(
                {
                    "uid": {"type": t, "id": i},
                    "attrs": _stored(self.value(("rec", types[t])), ("rec", types[t])),
                    "parents": [{"type": pt, "id": pi} for pt, pi in ups],
                }
            )
        self.paths = self._paths(types, context)
        policies = []
        for k in range(self.rng.randint(0, max_policies)):
            effect = self.pick(["permit", "permit", "forbid"])
            scope = ", ".join(
                (self.scope("principal"), self.scope("action"), self.scope("resource"))
            )
            if effect == "forbid" and self.chance(0.5):
                scope = "principal, action, resource"  # a forbid that can match every request
            depth = self.rng.randint(0, 2)
            clauses = " ".join(
                f"{self.pick(['when', 'when', 'unless'])} {{ {self.grow_bool(depth)} }}"
                for _ in range(self.pick([0, 1, 1, 1, 2]))
            )
            policies.append(f'@id("p{k}") {effect} ({scope}) {clauses};')
        requests = [
            self.request(principals, resources, context)
            for _ in range(self.rng.randint(1, max_requests))
        ]
        return World(seed, schema, entities, "\n".join(policies), requests)

    def request(self, principals: list[str], resources: list[str], context: Any) -> dict[str, Any]:
        good = self.chance(0.9)
        ctx = self.value(context)
        if not good and self.chance(0.5):
            ctx = {**ctx, "extra": 1}
        return {
            "principal": {
                "type": self.pick(principals if good else WORLD_TYPES),
                "id": self.pick([*WORLD_IDS, "a", "ghost"]),
            },
            "action": {"type": "Action", "id": self.pick(["act0", "act1"])},
            "resource": {
                "type": self.pick(resources if good else WORLD_TYPES),
                "id": self.pick([*WORLD_IDS, "ghost"]),
            },
            "context": ctx,
        }

    @staticmethod
    def _paths(types: dict[str, Any], context: Any) -> list[tuple[str, Any]]:
        paths: list[tuple[str, Any]] = [("context", context)]
        paths += [(name, ("ent", "E0")) for name in ("principal", "resource")]
        for t, attrs in types.items():
            paths += [(f'{t}::"a".{n}', ft) for n, ft, _ in attrs]
        for n, ft, _ in context[1]:
            paths.append((f"context.{n}", ft))
            if isinstance(ft, tuple) and ft[0] == "rec":
                paths += [(f"context.{n}.{m}", gt) for m, gt, _ in ft[1]]
            if isinstance(ft, tuple) and ft[0] == "ent":
                paths += [(f"context.{n}.{m}", gt) for m, gt, _ in types[ft[1]]]
        for name in ("principal", "resource"):
            paths += [(f"{name}.{n}", ft) for n, ft, _ in types["E0"]]
        return paths


def _stored(v: Any, t: Any) -> Any:
    """A request value in the explicit form an entity store needs."""
    if t == "decimal":
        return {"__extn": {"fn": "decimal", "arg": v}}
    if isinstance(t, tuple) and t[0] == "ent":
        return {"__entity": v}
    if isinstance(t, tuple) and t[0] == "set":
        return [_stored(x, t[1]) for x in v]
    if isinstance(t, tuple) and t[0] == "rec":
        types = {n: ft for n, ft, _ in t[1]}
        return {k: _stored(x, types[k]) for k, x in v.items()}
    return v


def worlds(max_policies: int = 8, max_requests: int = 6) -> st.SearchStrategy[World]:
    """Random worlds: three entity types in a hierarchy, two actions, policies, requests."""
    return st.integers(0, 2**64).map(
        lambda seed: _World(seed).build(seed, max_policies, max_requests)
    )
