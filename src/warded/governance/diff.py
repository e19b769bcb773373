"""What a new bundle changes for each agent: permissions gained and lost, and
example requests whose answer flips.

`changes(old, new)` compares the two governance documents (tools, the
permits and forbids that apply, their conditions and obligations).
`flips(old, new)` evaluates both bundles on requests generated from the
policies' own constants and boundaries — each number compared with, one
either side of it, each string, label and entity named, each scanner
finding — and returns the requests whose answer differs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cedarpy import pst

from warded.governance.document import agents, document
from warded.model import Principal
from warded.obligations.plan import approval_of
from warded.policy.bundle import PolicyBundle
from warded.policy.engine import Engine
from warded.policy.signature import SignatureError, arguments
from warded.policy.values import to_cedar

MAX_REQUESTS = 4000  # per agent and tool
REFUSED = {"deny", "unknown_tool"}  # hidden or denied: refused either way
NOW = 1_767_261_600  # 2026-01-01T10:00:00Z, a Thursday


# -- permissions, from the documents ----------------------------------------------------


def changes(old: PolicyBundle, new: PolicyBundle) -> list[dict[str, Any]]:
    """Per agent and tool, what was gained, lost or changed, as statements."""
    who = sorted(set(agents(old)) | set(agents(new)), key=lambda p: (p.type, p.id))
    before = {a["principal"]: a for a in document(old, who, 0)["agents"]}
    after = {a["principal"]: a for a in document(new, who, 0)["agents"]}
    out: list[dict[str, Any]] = []
    for principal in (str(p) for p in who):
        was, now = before[principal], after[principal]
        tools_was = {t["tool"]: t for t in was["tools"]}
        tools_now = {t["tool"]: t for t in now["tools"]}
        for tool in sorted(set(tools_was) | set(tools_now)):
            a, b = tools_was.get(tool), tools_now.get(tool)
            if a is None:
                out.append(_stmt(principal, tool, "gained", "the tool is now available"))
            if b is None:
                out.append(_stmt(principal, tool, "lost", "the tool is no longer available"))
            out += _policies(principal, tool, a, b, forbids=a is not None and b is not None)
    return out


def _stmt(principal: str, tool: str, kind: str, text: str, **more: Any) -> dict[str, Any]:
    return {"principal": principal, "tool": tool, "kind": kind, "text": text, **more}


def _policies(
    principal: str,
    tool: str,
    a: Mapping[str, Any] | None,
    b: Mapping[str, Any] | None,
    forbids: bool,
) -> Iterator[dict[str, Any]]:
    """Permits (and, for a tool available before and after, forbids) that changed."""
    kinds = (("allowed_by", "permit"), ("forbidden_by", "forbid"))
    for key, effect in kinds if forbids else kinds[:1]:
        was = {p["id"]: p for p in (a or {}).get(key, [])}
        now = {p["id"]: p for p in (b or {}).get(key, [])}
        grows = "gained" if effect == "permit" else "lost"
        shrinks = "lost" if effect == "permit" else "gained"
        for pid in sorted(set(was) | set(now)):
            p, q = was.get(pid), now.get(pid)
            if p is None and q is not None:
                yield _stmt(principal, tool, grows, f"new {effect} {pid}: {_summary(q)}")
            elif q is None and p is not None:
                yield _stmt(principal, tool, shrinks, f"{effect} {pid} removed: {_summary(p)}")
            elif p is not None and q is not None and _meaning(p) != _meaning(q):
                yield _stmt(
                    principal,
                    tool,
                    "changed",
                    f"{effect} {pid} changed",
                    before=_summary(p),
                    after=_summary(q),
                )


def _meaning(p: Mapping[str, Any]) -> tuple[Any, ...]:
    conditions = tuple((c["kind"], c["cedar"]) for c in p["conditions"])
    return (p["principal"], p["resource"], conditions, json.dumps(p["obligations"]))


def _summary(p: Mapping[str, Any]) -> str:
    parts = [s for s in (p["principal"], p["resource"]) if s]
    parts += [f"{c['kind']} {c['text']}" for c in p["conditions"]]
    o = p["obligations"]
    parts += [f"approval from {o['approval']}"] if "approval" in o else []
    parts += [f"{o[k]}" for k in ("rate", "budget") if k in o]
    return "; ".join(parts) or "always"


# -- example requests that flip ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Example:
    principal: str
    tool: str
    args: Mapping[str, Any]
    resource: Mapping[str, str]
    labels: tuple[str, ...]
    found: tuple[str, ...]  # the input scanners' findings (context.scan fields set)
    before: str
    after: str

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "tool": self.tool,
            "args": dict(self.args),
            "resource": f"{self.resource['type']}::{json.dumps(self.resource['id'])}",
            "labels": list(self.labels),
            "scan_found": list(self.found),
            "before": self.before,
            "after": self.after,
        }


def flips(old: PolicyBundle, new: PolicyBundle) -> tuple[int, list[Example]]:
    """(requests tried, those whose answer differs between `old` and `new`)."""
    engines = (Engine(old), Engine(new))
    who = sorted(set(agents(old)) | set(agents(new)), key=lambda p: (p.type, p.id))
    tools = sorted(set(old.actions) | set(new.actions))
    constants = _Constants()
    for bundle in (old, new):
        for node in bundle.tree.static_policies.values():
            constants.collect(node)
    tried = 0
    found: list[Example] = []
    for principal in who:
        for tool in tools:
            if not any(e.bundle.action_uid(tool) and e.visible(principal, tool) for e in engines):
                continue
            for args, resource, labels, context in _requests(new, old, tool, constants):
                tried += 1
                answers = [_answer(e, principal, tool, resource, context) for e in engines]
                if {*answers} <= REFUSED or answers[0] == answers[1]:
                    continue
                hits = tuple(k for k, v in context.get("scan", {}).items() if v)
                found.append(Example(str(principal), tool, args, resource, labels, hits, *answers))
    return tried, found


def _answer(
    engine: Engine,
    principal: Principal,
    tool: str,
    resource: Mapping[str, str],
    context: Mapping[str, Any],
) -> str:
    if engine.bundle.action_uid(tool) is None or not engine.visible(principal, tool):
        return "unknown_tool"
    try:
        decision = engine.decide(principal, tool, resource, context)
    except Exception:  # an engine failure is a deny, as at the gate
        return "deny"
    if not decision.allowed:
        return "deny"
    return "allow after approval" if approval_of(engine.bundle, decision) else "allow"


class _Constants:
    """The values the policies compare with, by the path they compare."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], set[Any]] = {}
        self.labels: set[str] = set()
        self.entities: set[tuple[str, str]] = set()
        self.types: set[str] = set()

    def collect(self, node: pst.Template) -> None:
        for scope in (node.resource,):
            uid = getattr(scope, "entity", None)
            if isinstance(uid, pst.EntityUid):
                self.entities.add((str(uid.type), uid.id))
            kind = getattr(scope, "entity_type", None)
            if kind is not None:
                self.types.add(str(kind))
        for clause in node.clauses:
            self._walk(clause.expr)

    def _walk(self, expr: Any) -> None:
        if isinstance(expr, pst.BinaryOp):
            for side, other in ((expr.left, expr.right), (expr.right, expr.left)):
                path = _args_path(side)
                value = _literal(other)
                if path is not None and value is not None:
                    self.values.setdefault(path, set()).add(value)
                if _is_labels(side) and isinstance(other, pst.StringLit):
                    self.labels.add(other.value)
                if _is_labels(side) and isinstance(other, pst.Set):
                    self.labels |= {e.value for e in other.elements if isinstance(e, pst.StringLit)}
            if expr.op == "contains" and isinstance(expr.left, pst.Set):
                path = _args_path(expr.right)
                if path is not None:
                    for e in expr.left.elements:
                        if (value := _literal(e)) is not None:
                            self.values.setdefault(path, set()).add(value)
        if isinstance(expr, pst.EntityLit):
            self.entities.add((str(expr.value.type), expr.value.id))
        if hasattr(expr, "__dataclass_fields__"):
            for name in expr.__dataclass_fields__:
                child = getattr(expr, name)
                for c in child if isinstance(child, tuple) else (child,):
                    if hasattr(c, "__dataclass_fields__"):
                        self._walk(c)


def _args_path(expr: Any) -> tuple[str, ...] | None:
    attrs: list[str] = []
    while isinstance(expr, pst.GetAttr):
        attrs.append(expr.attr)
        expr = expr.base
    attrs.reverse()
    if isinstance(expr, pst.Var) and expr.name == "context" and attrs[:1] == ["args"]:
        return tuple(attrs[1:])
    return None


def _is_labels(expr: Any) -> bool:
    return (
        isinstance(expr, pst.GetAttr)
        and expr.attr == "labels"
        and isinstance(expr.base, pst.GetAttr)
        and expr.base.attr == "session"
    )


def _literal(expr: Any) -> Any:
    if isinstance(expr, pst.LongLit | pst.StringLit | pst.BoolLit):
        return expr.value
    if (
        isinstance(expr, pst.UnaryOp)
        and expr.op == "decimal"
        and isinstance(expr.arg, pst.StringLit)
    ):
        return Decimal(expr.arg.value)
    return None


def _candidates(kind: str, found: set[Any]) -> list[Any]:
    if kind == "integer":
        ints = sorted({v for v in found if isinstance(v, int) and not isinstance(v, bool)})
        return sorted({x for v in ints for x in (v - 1, v, v + 1)}) or [1]
    if kind == "number":
        decs = sorted({Decimal(v) for v in found if isinstance(v, int | Decimal)})
        step = Decimal("0.01")
        return [float(x) for x in sorted({x for v in decs for x in (v - step, v, v + step)})] or [
            1.0
        ]
    if kind == "string":
        return [*sorted({v for v in found if isinstance(v, str)}), "(other)"]
    if kind == "boolean":
        return [False, True]
    if kind == "array":
        return [[]]
    return [{}]


def _values(schema: Mapping[str, Any], path: tuple[str, ...], c: _Constants) -> list[Any]:
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        names = sorted(props)
        options = []
        for name in names:
            values = _values(props[name], (*path, name), c)
            options.append(values if name in required else [*values, _ABSENT])
        out = []
        for combo in itertools.islice(itertools.product(*options), MAX_REQUESTS):
            out.append({n: v for n, v in zip(names, combo, strict=True) if v is not _ABSENT})
        return out
    return _candidates(str(kind), c.values.get(path, set()))


_ABSENT = object()


def _requests(
    new: PolicyBundle, old: PolicyBundle, tool: str, c: _Constants
) -> Iterator[tuple[dict[str, Any], dict[str, str], tuple[str, ...], dict[str, Any]]]:
    bundle = new if tool in new.actions else old
    try:
        schema = arguments(bundle, tool)
    except SignatureError:
        return
    resources = [{"type": t, "id": i} for t, i in sorted(_resources(bundle, c))]
    resources.append({"type": "Tool", "id": tool})
    label_sets = [()] + [(label,) for label in sorted(c.labels)]
    scans = sorted(bundle.scanned.get(tool, frozenset()))
    scan_sets: list[dict[str, bool]] = [dict.fromkeys(scans, False)]
    scan_sets += [{f: f == hit for f in scans} for hit in scans]
    combos = itertools.product(_values(schema, (), c), resources, label_sets, scan_sets)
    for args, resource, labels, scan in itertools.islice(combos, MAX_REQUESTS):
        context: dict[str, Any] = {
            "args": to_cedar(args, schema),
            "session": {"id": "warded-diff", "labels": list(labels), "calls": 1},
            "now": {"epoch": NOW, "hour": 10, "weekday": 4},
        }
        if scans:
            context["scan"] = scan
        yield args, resource, labels, context


def _resources(bundle: PolicyBundle, c: _Constants) -> set[tuple[str, str]]:
    """Entities policies name as resources, those in them, and one of each type not in them."""
    named = c.entities | {(t, i) for t, i in bundle.ancestors if t in c.types}
    out = set(named)
    for uid, above in bundle.ancestors.items():
        if above & named:
            out.add(uid)
    out |= {(t, "(other)") for t, _ in out}
    return out
