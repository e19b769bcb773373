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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
# including the schema. Types are small tuples: "Long", "Bool", "String",
# "decimal", ("set", T), ("rec", ((name, T, required), ...)), ("ent", name).

WORLD_TYPES = ("E0", "E1", "E2")
WORLD_IDS = ("a", "b", "")
WORLD_LONGS = (0, 1, -1, 2, 7, 100, 2**62, -(2**63), 2**63 - 1)
WORLD_STRINGS = ("", "a", "ab", "ba", "a*b", "\u00e9")
WORLD_DECIMALS = ("0.0", "1.5", "-2.25", "0.0001", "922337203685477.5807", "-0.5")
WORLD_PATTERNS = ('"a*"', '"*b"', '"a\\*b"', '"*"', '""', '"a*b*"', '"\u00e9"')


def _type_text(t: Any) -> str:
    if isinstance(t, str):
        return t
    if t[0] == "set":
        return f"Set<{_type_text(t[1])}>"
    if t[0] == "ent":
        return t[1]
    fields = ", ".join(f"{n}{'' if req else '?'}: {_type_text(ft)}" for n, ft, req in t[1])
    return f"{{{fields}}}"


def _world_types(depth: int = 2) -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(["Long", "Bool", "String", "decimal"]) | st.sampled_from(
        [("ent", t) for t in WORLD_TYPES]
    )
    if depth == 0:
        return leaf
    inner = _world_types(depth - 1)
    return st.one_of(
        leaf,
        leaf,
        inner.map(lambda t: ("set", t)),
        st.lists(
            st.tuples(st.sampled_from(["x", "y", "z"]), inner, st.booleans()),
            max_size=3,
            unique_by=lambda f: f[0],
        ).map(lambda fs: ("rec", tuple(fs))),
    )


def _attrs() -> st.SearchStrategy[tuple[tuple[str, Any, bool], ...]]:
    return st.lists(
        st.tuples(
            st.sampled_from(["n", "s", "d", "f", "r", "e", "l"]), _world_types(), st.booleans()
        ),
        max_size=4,
        unique_by=lambda f: f[0],
    ).map(tuple)


@dataclass(frozen=True)
class World:
    """A random schema, entity store, policy text and requests, with Cedar's answers to come."""

    schema: str
    entities: list[dict[str, Any]] = field(hash=False)
    policies: str
    requests: list[dict[str, Any]] = field(hash=False)


def _value(draw: Any, t: Any, depth: int = 0) -> Any:
    if t == "Long":
        return draw(st.sampled_from(WORLD_LONGS))
    if t == "Bool":
        return draw(st.booleans())
    if t == "String":
        return draw(st.sampled_from(WORLD_STRINGS))
    if t == "decimal":
        return draw(st.sampled_from(WORLD_DECIMALS))
    if t[0] == "ent":
        return {"type": t[1], "id": draw(st.sampled_from([*WORLD_IDS, "ghost"]))}
    if t[0] == "set":
        return [_value(draw, t[1], depth + 1) for _ in range(draw(st.integers(0, 2)))]
    return {n: _value(draw, ft, depth + 1) for n, ft, req in t[1] if req or draw(st.booleans())}


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


class _Exprs:
    """Random Cedar expressions over a world's types, mostly well typed."""

    def __init__(self, draw: Any, types: dict[str, Any], context: Any) -> None:
        self.draw = draw
        self.paths: list[tuple[str, Any]] = [("context", context)]
        for name in ("principal", "resource"):
            self.paths.append((name, ("ent", "E0")))
        for t, attrs in types.items():
            for n, ft, _ in attrs:
                self.paths.append((f'{t}::"a".{n}', ft))
        for n, ft, _ in context[1]:
            self.paths.append((f"context.{n}", ft))
            if isinstance(ft, tuple) and ft[0] == "rec":
                self.paths += [(f"context.{n}.{m}", gt) for m, gt, _ in ft[1]]
            if isinstance(ft, tuple) and ft[0] == "ent":
                self.paths += [(f"context.{n}.{m}", gt) for m, gt, _ in types[ft[1]]]
        for name in ("principal", "resource"):
            for n, ft, _ in types["E0"]:
                self.paths.append((f"{name}.{n}", ft))

    def pick(self, options: list[str]) -> str:
        return self.draw(st.sampled_from(options))

    def of(self, kind: str, depth: int) -> str:
        if self.draw(st.integers(0, 19)) == 0:  # now and then, the wrong type
            kind = self.pick(["bool", "long", "str", "dec", "ent", "set"])
        paths = [p for p, t in self.paths if _kind_of(t) == kind]
        leaves = getattr(self, f"leaf_{kind}")()
        if paths:
            leaves += [self.pick(paths)] * 2
        if depth <= 0:
            return self.pick(leaves)
        grow = getattr(self, f"grow_{kind}", None)
        if grow is None or self.draw(st.booleans()):
            return self.pick(leaves)
        return grow(depth - 1)  # type: ignore[no-any-return]

    def leaf_bool(self) -> list[str]:
        return ["true", "false"]

    def leaf_long(self) -> list[str]:
        return [str(n) for n in WORLD_LONGS if n != -(2**63)]

    def leaf_str(self) -> list[str]:
        return [json.dumps(s, ensure_ascii=False) for s in WORLD_STRINGS]

    def leaf_dec(self) -> list[str]:
        return [f'decimal("{d}")' for d in WORLD_DECIMALS]

    def leaf_ent(self) -> list[str]:
        return ["principal", "resource", *(f'{t}::"{i}"' for t in WORLD_TYPES for i in WORLD_IDS)]

    def leaf_set(self) -> list[str]:
        return ["[]", "[1, 2]", '["a", "ab"]', '[E0::"a", E1::"b"]', "[true]", "[1, true]"]

    def leaf_rec(self) -> list[str]:
        return ["{}", '{x: 1, y: "a"}']

    def grow_bool(self, d: int) -> str:
        choice = self.draw(st.integers(0, 15))
        if choice == 0:
            return (
                f"({self.of('long', d)} {self.pick(['<', '<=', '>', '>='])} {self.of('long', d)})"
            )
        if choice == 1:
            kind = self.pick(["long", "str", "ent", "dec", "set", "rec", "bool"])
            return f"({self.of(kind, d)} {self.pick(['==', '!='])} {self.of(kind, d)})"
        if choice == 2:
            return f"({self.of('bool', d)} && {self.of('bool', d)})"
        if choice == 3:
            return f"({self.of('bool', d)} || {self.of('bool', d)})"
        if choice == 4:
            return f"!{self.of('bool', d)}"
        if choice == 5:
            b, t, e = self.of("bool", d), self.of("bool", d), self.of("bool", d)
            return f"(if {b} then {t} else {e})"
        if choice == 6:
            return f"({self.of('ent', d)} in {self.of(self.pick(['ent', 'set']), d)})"
        if choice == 7:
            return f"({self.of('ent', d)} is {self.pick(list(WORLD_TYPES))})"
        if choice == 8:
            attr = self.pick(["n", "s", "d", "f", "r", "e", "l", "x", "y", "z"])
            return f"({self.of(self.pick(['ent', 'rec']), d)} has {attr})"
        if choice == 9:
            return f"({self.of('str', d)} like {self.pick(list(WORLD_PATTERNS))})"
        if choice == 10:
            method = self.pick(["contains", "containsAll", "containsAny"])
            arg = self.of(self.pick(["long", "str", "ent"]) if method == "contains" else "set", d)
            return f"{self.of('set', d)}.{method}({arg})"
        if choice == 11:
            return f"{self.of('set', d)}.isEmpty()"
        if choice == 12:
            method = self.pick(["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"])
            return f"{self.of('dec', d)}.{method}({self.of('dec', d)})"
        if choice == 13:
            return f"({self.of('ent', d)} is {self.pick(list(WORLD_TYPES))} in {self.of('ent', d)})"
        return self.of("bool", 0)

    def grow_long(self, d: int) -> str:
        choice = self.draw(st.integers(0, 3))
        if choice == 3:
            return f"(-{self.of('long', d)})"
        return f"({self.of('long', d)} {'+-*'[choice]} {self.of('long', d)})"

    def grow_set(self, d: int) -> str:
        kind = self.pick(["long", "str", "ent"])
        items = [self.of(kind, d) for _ in range(self.draw(st.integers(0, 3)))]
        return f"[{', '.join(items)}]"

    def grow_rec(self, d: int) -> str:
        return f"{{x: {self.of('long', d)}, y: {self.of('str', d)}}}"


def _kind_of(t: Any) -> str:
    simple = {"Long": "long", "Bool": "bool", "String": "str", "decimal": "dec"}
    if isinstance(t, str):
        return simple[t]
    return {"ent": "ent", "set": "set", "rec": "rec"}[t[0]]


def _scope(draw: Any, var: str, actions: Sequence[str]) -> str:
    if var == "action":
        uids = [f'Action::"{a}"' for a in actions]
        return draw(
            st.sampled_from(
                [
                    "action",
                    f"action == {uids[0]}",
                    f"action in {uids[-1]}",
                    f"action in [{', '.join(uids[:2])}]",
                ]
            )
        )
    t = draw(st.sampled_from(WORLD_TYPES))
    target = f'{draw(st.sampled_from(WORLD_TYPES))}::"{draw(st.sampled_from(WORLD_IDS))}"'
    return draw(
        st.sampled_from(
            [
                var,
                var,
                var,
                f"{var} == {target}",
                f"{var} in {target}",
                f"{var} is {t}",
                f"{var} is {t} in {target}",
            ]
        )
    )


@st.composite
def worlds(draw: Any, max_policies: int = 6, max_requests: int = 6) -> World:
    """A random world: three entity types, two actions (one in a group), policies, requests."""
    types = {t: draw(_attrs()) for t in WORLD_TYPES}
    parents = {
        t: draw(st.lists(st.sampled_from(WORLD_TYPES), max_size=2, unique=True))
        for t in WORLD_TYPES
    }
    context = ("rec", draw(_attrs()))
    principals = draw(st.lists(st.sampled_from(WORLD_TYPES), min_size=1, max_size=2, unique=True))
    resources = draw(st.lists(st.sampled_from(WORLD_TYPES), min_size=1, max_size=2, unique=True))
    applies = (
        f"appliesTo {{ principal: [{', '.join(principals)}], resource: [{', '.join(resources)}], "
        f"context: {_type_text(context)} }}"
    )
    schema = ""
    for t in WORLD_TYPES:
        ups = f" in [{', '.join(parents[t])}]" if parents[t] else ""
        schema += f"entity {t}{ups} = {_type_text(('rec', types[t]))};\n"
    schema += f"action group;\naction act0 in [group] {applies};\naction act1 {applies};\n"
    uids = [
        (t, i)
        for t in WORLD_TYPES
        for i in draw(st.lists(st.sampled_from(WORLD_IDS), max_size=3, unique=True))
    ]
    uids = draw(st.permutations(uids))
    entities = []
    for k, (t, i) in enumerate(uids):
        # parents only among the entities before this one: Cedar refuses a cycle
        allowed = [u for u in uids[:k] if u[0] in parents[t]]
        ups = draw(st.lists(st.sampled_from(allowed), max_size=2, unique=True)) if allowed else []
        attrs = _value(draw, ("rec", types[t]))
        entities.append(
            {
                "uid": {"type": t, "id": i},
                "attrs": _stored(attrs, ("rec", types[t])),
                "parents": [{"type": pt, "id": pi} for pt, pi in ups],
            }
        )
    exprs = _Exprs(draw, types, context)
    policies = []
    for k in range(draw(st.integers(0, max_policies))):
        effect = draw(st.sampled_from(["permit", "permit", "forbid"]))
        scope = ", ".join(
            (
                _scope(draw, "principal", ()),
                _scope(draw, "action", ("act0", "group", "act1")),
                _scope(draw, "resource", ()),
            )
        )
        if effect == "forbid" and draw(st.booleans()):
            scope = "principal, action, resource"  # a forbid that can match every request
        depth = draw(st.integers(0, 3))  # shallow conditions hold more often
        clauses = " ".join(
            f"{draw(st.sampled_from(['when', 'when', 'unless']))} {{ {exprs.of('bool', depth)} }}"
            for _ in range(draw(st.integers(0, 2)))
        )
        policies.append(f'@id("p{k}") {effect} ({scope}) {clauses};')
    requests = []
    for _ in range(draw(st.integers(1, max_requests))):
        good = draw(st.integers(0, 9)) > 0
        p_type = draw(st.sampled_from(principals if good else WORLD_TYPES))
        r_type = draw(st.sampled_from(resources if good else WORLD_TYPES))
        ctx = _value(draw, context)
        if not good and draw(st.booleans()):
            ctx = {**ctx, "extra": 1}
        requests.append(
            {
                "principal": {"type": p_type, "id": draw(st.sampled_from([*WORLD_IDS, "ghost"]))},
                "action": {"type": "Action", "id": draw(st.sampled_from(["act0", "act1"]))},
                "resource": {"type": r_type, "id": draw(st.sampled_from([*WORLD_IDS, "ghost"]))},
                "context": ctx,
            }
        )
    return World(schema, entities, "\n".join(policies), requests)
