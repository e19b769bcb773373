"""Compile one slice of a policy set, for one (principal, action), to Python source.

The subset: every scope form; `==`, `!=`, `<`, `<=`, `>`, `>=`, `+`, `-`, `*`
and unary `-` on Long; `&&`, `||`, `!`, `if-then-else`; `in` over the entity
hierarchy (action groups included: actions are in the entity store); `is`,
`has`, attribute access on records and entities; `like`; set and record
literals; `contains`, `containsAll`, `containsAny`, `isEmpty`; `decimal` and
its comparison methods. Anything else (templates, tags, `ip`, `datetime`,
`duration` and their methods) raises `Unsupported`, and the slice stays with
cedarpy.

The generated function evaluates every policy of the slice in Cedar's order
(principal, action, resource scope, then the clauses, each `&&`, `||` and
`if` short-circuiting as Cedar's do) and raises `Fallback` wherever Cedar
would report an error. Whatever depends only on the principal and the action
(both fixed for a slice), and on the entity store, is evaluated once, here;
what this leaves is the resource scope and the conditions on the context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cedarpy import pst

from warded.policy import conversion
from warded.policy import runtime as rt
from warded.policy import schema as s

Uid = tuple[str, str]
Outcome = tuple[bool, tuple[str, ...]]


class Unsupported(Exception):
    """The slice uses something outside the compiled subset."""


@dataclass(frozen=True, slots=True)
class _Code:
    text: str
    kind: str  # bool, long, str, dec, uid, set, record, any
    free: bool  # depends on the resource or the context
    record: s.Record | None = None  # the declared type of a record value, when known
    stable: bool = False  # a local bound once per call, before any policy (cannot fail)


_COMPARE = {"less": "<", "less_eq": "<=", "greater": ">", "greater_eq": ">="}
_HELPER = {"less": "_lt", "less_eq": "_le", "greater": "_gt", "greater_eq": "_ge"}
_ARITH = {"add": "_add", "sub": "_sub", "mul": "_mul"}
_SETS = {"contains": "_contains", "contains_all": "_contains_all", "contains_any": "_contains_any"}
_DECIMAL = {
    "decimal_less_than": "_dlt",
    "decimal_less_eq": "_dle",
    "decimal_greater": "_dgt",
    "decimal_greater_eq": "_dge",
}
_DECIMAL_OP = {
    "decimal_less_than": "<",
    "decimal_less_eq": "<=",
    "decimal_greater": ">",
    "decimal_greater_eq": ">=",
}
_ABSENT: Any = object()
_ATOM_KINDS = frozenset({"bool", "long", "str", "uid", "dec"})
_HELPERS: dict[str, Any] = {
    "_fail": rt.fail,
    "_bool": rt.boolean,
    "_eq": rt.ceq,
    "_lt": rt.lt,
    "_le": rt.le,
    "_gt": rt.gt,
    "_ge": rt.ge,
    "_add": rt.add,
    "_sub": rt.sub,
    "_mul": rt.mul,
    "_neg": rt.neg,
    "_long": rt.checked,
    "_contains": rt.contains,
    "_contains_all": rt.contains_all,
    "_contains_any": rt.contains_any,
    "_is_empty": rt.is_empty,
    "_decimal": rt.parse_decimal,
    "_dlt": rt.dlt,
    "_dle": rt.dle,
    "_dgt": rt.dgt,
    "_dge": rt.dge,
    "_is": rt.is_type,
    "_like": rt.like,
    "_cset": rt.cset,
}


def _kind(value: Any) -> str:
    return {
        bool: "bool",
        int: "long",
        str: "str",
        rt.Dec: "dec",
        tuple: "uid",
        rt.CSet: "set",
        dict: "record",
    }.get(type(value), "any")


def _field_kind(t: s.Type) -> tuple[str, s.Record | None]:
    if isinstance(t, s.Prim):
        prim = {"Long": "long", "Bool": "bool", "String": "str", "decimal": "dec"}
        return prim.get(t.name, "any"), None
    if isinstance(t, s.EntityRef):
        return "uid", None
    if isinstance(t, s.SetOf):
        return "set", None
    return "record", t


class _SliceCompiler:
    def __init__(self, principal: Uid, action: Uid, store: rt.Store, context: s.Record) -> None:
        self.principal = principal
        self.action = action
        self.store = store
        self.context = context
        self.env: dict[str, Any] = {
            **_HELPERS,
            "_in": store.is_in,
            "_get": store.get,
            "_has": store.has,
            "_has_path": store.has_path,
            "_attrs": store.attrs,
            "_P": principal,
            "_A": action,
        }
        self.locals: dict[str, str] = {}  # expression text -> the local bound to it
        self.prelude: list[str] = []

    # -- constants

    def literal(self, value: Any) -> _Code:
        t = type(value)
        if t is bool or t is str:
            text = repr(value)
        elif t is int:
            text = f"({value!r})"
        else:
            text = f"_k{len(self.env)}"
            self.env[text] = value
        return _Code(text, _kind(value), False)

    def fold(self, code: _Code) -> _Code:
        """Evaluate now what depends only on the principal, the action and the store."""
        if code.free:
            return code
        try:
            value = eval(code.text, self.env)
        except Exception:
            return _Code("_fail()", "any", False)
        folded = self.literal(value)
        return _Code(folded.text, folded.kind, False, code.record)

    def local(self, text: str) -> str:
        """A local bound to `text` before the policies are evaluated (`text` cannot fail)."""
        name = self.locals.get(text)
        if name is None:
            name = self.locals[text] = f"v{len(self.locals)}"
            self.prelude.append(f"    {name} = {text}")
        return name

    def constant(self, code: _Code) -> Any:
        """The value of a folded constant, or `_ABSENT`."""
        if code.free:
            return _ABSENT
        if code.text in self.env:
            return self.env[code.text]
        try:
            return eval(code.text, {})
        except Exception:
            return _ABSENT

    # -- expressions

    def expr(self, e: object) -> _Code:
        return self.fold(self._expr(e))

    def checked_bool(self, e: object) -> _Code:
        c = self.expr(e)
        if c.kind == "bool":
            return c
        return _Code(f"_bool({c.text})", "bool", c.free)

    def _expr(self, e: object) -> _Code:
        if isinstance(e, pst.Var):
            if e.name == "principal":
                return _Code("_P", "uid", False)
            if e.name == "action":
                return _Code("_A", "uid", False)
            if e.name == "resource":
                return _Code("R", "uid", True)
            return _Code("C", "record", True, self.context, stable=True)
        if isinstance(e, pst.BoolLit | pst.LongLit | pst.StringLit):
            return self.literal(e.value)
        if isinstance(e, pst.EntityLit):
            return self.literal(_uid(e.value))
        if isinstance(e, pst.UnaryOp):
            return self.unary(e)
        if isinstance(e, pst.BinaryOp):
            return self.binary(e)
        if isinstance(e, pst.GetAttr):
            return self.get_attr(e)
        if isinstance(e, pst.HasAttr):
            base = self.expr(e.base)
            if len(e.attrs) == 1:
                return _Code(f"_has({base.text}, {e.attrs[0]!r})", "bool", base.free)
            return _Code(f"_has_path({base.text}, {tuple(e.attrs)!r})", "bool", base.free)
        if isinstance(e, pst.Like):
            base = self.expr(e.base)
            segments = _segments(e.pattern)
            if base.kind == "str":  # a str for certain: the str methods Cedar's `like` means
                if len(segments) == 1:
                    return _Code(f"({base.text} == {segments[0]!r})", "bool", base.free)
                if len(segments) == 2 and not segments[1]:
                    return _Code(f"{base.text}.startswith({segments[0]!r})", "bool", base.free)
                if len(segments) == 2 and not segments[0]:
                    return _Code(f"{base.text}.endswith({segments[1]!r})", "bool", base.free)
            match = self.literal(rt.matcher(segments)).text
            if base.kind == "str":
                return _Code(f"{match}({base.text})", "bool", base.free)
            return _Code(f"_like({base.text}, {match})", "bool", base.free)
        if isinstance(e, pst.Is):
            base = self.expr(e.base)
            test = f"_is({base.text}, {str(e.entity_type)!r})"
            if e.in_expr is None:
                return _Code(test, "bool", base.free)
            group = self.expr(e.in_expr)
            text = f"({test} and _in({base.text}, {group.text}))"
            return _Code(text, "bool", base.free or group.free)
        if isinstance(e, pst.IfThenElse):
            cond = self.checked_bool(e.cond)
            then, other = self.expr(e.then_expr), self.expr(e.else_expr)
            kind = then.kind if then.kind == other.kind else "any"
            record = then.record if then.record == other.record else None
            text = f"({then.text} if {cond.text} else {other.text})"
            return _Code(text, kind, cond.free or then.free or other.free, record)
        if isinstance(e, pst.Set):
            items = [self.expr(x) for x in e.elements]
            inner = "".join(f"{c.text}, " for c in items)
            return _Code(f"_cset(({inner}))", "set", any(c.free for c in items))
        if isinstance(e, pst.Record):
            fields = {k: self.expr(v) for k, v in e.fields.items()}
            inner = ", ".join(f"{k!r}: {c.text}" for k, c in fields.items())
            return _Code(f"{{{inner}}}", "record", any(c.free for c in fields.values()))
        raise Unsupported(type(e).__name__)

    def unary(self, e: pst.UnaryOp) -> _Code:
        if e.op == "decimal" and isinstance(e.arg, pst.StringLit):
            try:
                return self.literal(rt.parse_decimal(e.arg.value))
            except rt.Fallback:
                return _Code("_fail()", "any", False)
        arg = self.expr(e.arg)
        if e.op == "not":
            checked = arg.text if arg.kind == "bool" else f"_bool({arg.text})"
            return _Code(f"(not {checked})", "bool", arg.free)
        helper = {"neg": ("_neg", "long"), "is_empty": ("_is_empty", "bool")}
        helper["decimal"] = ("_decimal", "dec")
        if e.op not in helper:
            raise Unsupported(e.op)
        name, kind = helper[e.op]
        return _Code(f"{name}({arg.text})", kind, arg.free)

    def binary(self, e: pst.BinaryOp) -> _Code:
        op = e.op
        if op in ("and", "or"):
            left, right = self.checked_bool(e.left), self.checked_bool(e.right)
            return _Code(f"({left.text} {op} {right.text})", "bool", left.free or right.free)
        left, right = self.expr(e.left), self.expr(e.right)
        free = left.free or right.free
        if op in ("eq", "not_eq"):
            if left.kind == right.kind and left.kind in _ATOM_KINDS:
                text = f"({left.text} == {right.text})"
            else:
                text = f"_eq({left.text}, {right.text})"
            return _Code(text if op == "eq" else f"(not {text})", "bool", free)
        if op in _COMPARE:
            if left.kind == right.kind == "long":
                return _Code(f"({left.text} {_COMPARE[op]} {right.text})", "bool", free)
            return _Code(f"{_HELPER[op]}({left.text}, {right.text})", "bool", free)
        if op in _ARITH:
            return _Code(f"{_ARITH[op]}({left.text}, {right.text})", "long", free)
        if op == "in":
            return _Code(f"_in({left.text}, {right.text})", "bool", free)
        if op == "contains" and left.kind == "set" and left.stable:
            value = self.constant(right)
            if type(value) in (str, int, tuple):  # its own canonical key (see `runtime.key`)
                keys = self.local(f"{left.text}.keys")
                return _Code(f"({right.text} in {keys})", "bool", free)
        if op in _SETS:
            return _Code(f"{_SETS[op]}({left.text}, {right.text})", "bool", free)
        if op in _DECIMAL:
            if left.kind == right.kind == "dec":
                a, b = self.decimal_units(left), self.decimal_units(right)
                return _Code(f"({a} {_DECIMAL_OP[op]} {b})", "bool", free)
            return _Code(f"{_DECIMAL[op]}({left.text}, {right.text})", "bool", free)
        raise Unsupported(op)

    def decimal_units(self, code: _Code) -> str:
        """A decimal's count of ten-thousandths, as code (the kind is known to be `dec`)."""
        value = self.constant(code)
        if type(value) is rt.Dec:
            return f"({value.n})"
        if code.stable:
            return self.local(f"{code.text}.n")
        return f"{code.text}.n"

    def get_attr(self, e: pst.GetAttr) -> _Code:
        base = self.expr(e.base)
        if base.kind == "record" and base.record is not None:
            declared = base.record.attrs.get(e.attr)
            if declared is None:
                return _Code("_fail()", "any", False)
            kind, record = _field_kind(declared[0])
            text = f"{base.text}[{e.attr!r}]"
            if base.stable and declared[1]:
                # a required attribute of the converted context: present, of its declared type
                return _Code(self.local(text), kind, True, record, stable=True)
            return _Code(text, kind, base.free, record)
        if base.kind == "uid":
            return _Code(f"_attrs[{base.text}][{e.attr!r}]", "any", base.free)
        return _Code(f"_get({base.text}, {e.attr!r})", "any", base.free)

    # -- policies

    def scope(self, node: pst.Template) -> bool:
        """Whether the principal and action scopes hold; they depend on nothing else."""
        p, a = self.principal, self.action
        return _scope_holds(node.principal, p, self.store) and _action_holds(
            node.action, a, self.store
        )

    def condition(self, node: pst.Template) -> _Code | None:
        if not self.scope(node):
            return None
        parts = [self.resource_scope(node.resource)]
        for clause in node.clauses:
            c = self.checked_bool(clause.expr)
            if isinstance(clause, pst.Unless):
                c = self.fold(_Code(f"(not {c.text})", "bool", c.free))
            parts.append(c)
        if parts[1:2] and parts[1].text == "False":
            return None  # the scopes cannot error, so the first clause decides alone
        parts = [c for c in parts if c.text != "True"]
        if not parts:
            return _Code("True", "bool", False)
        return _Code(" and ".join(c.text for c in parts), "bool", True)

    def resource_scope(self, scope: object) -> _Code:
        if isinstance(scope, pst.ScopeAny):
            return _Code("True", "bool", False)
        if isinstance(scope, pst.ScopeIs):
            return _Code(f"(R[0] == {str(scope.entity_type)!r})", "bool", True)
        entity = getattr(scope, "entity", None)
        if not isinstance(entity, pst.EntityUid):
            raise Unsupported("template slot")
        target = self.literal(_uid(entity)).text
        if isinstance(scope, pst.ScopeEq):
            return _Code(f"(R == {target})", "bool", True)
        if isinstance(scope, pst.ScopeIn):
            return _Code(f"_in(R, {target})", "bool", True)
        if isinstance(scope, pst.ScopeIsIn):
            text = f"(R[0] == {str(scope.entity_type)!r} and _in(R, {target}))"
            return _Code(text, "bool", True)
        raise Unsupported(type(scope).__name__)


def _uid(e: pst.EntityUid) -> Uid:
    return (str(e.type), e.id)


def _segments(pattern: tuple[object, ...]) -> tuple[str, ...]:
    parts: list[list[str]] = [[]]
    for elem in pattern:
        if isinstance(elem, pst.Wildcard):
            parts.append([])
        elif isinstance(elem, pst.Char):
            parts[-1].append(elem.value)
        else:
            raise Unsupported(type(elem).__name__)
    return tuple("".join(p) for p in parts)


def _scope_holds(scope: object, p: Uid, store: rt.Store) -> bool:
    if isinstance(scope, pst.ScopeAny):
        return True
    if isinstance(scope, pst.ScopeIs):
        return p[0] == str(scope.entity_type)
    entity = getattr(scope, "entity", None)
    if not isinstance(entity, pst.EntityUid):
        raise Unsupported("template slot")
    target = _uid(entity)
    if isinstance(scope, pst.ScopeEq):
        return p == target
    if isinstance(scope, pst.ScopeIn):
        return store.is_in(p, target)
    if isinstance(scope, pst.ScopeIsIn):
        return p[0] == str(scope.entity_type) and store.is_in(p, target)
    raise Unsupported(type(scope).__name__)


def _action_holds(scope: object, a: Uid, store: rt.Store) -> bool:
    if isinstance(scope, pst.ScopeAny):
        return True
    if isinstance(scope, pst.ActionEq):
        return a == _uid(scope.entity)
    if isinstance(scope, pst.ActionIn):
        return any(store.is_in(a, _uid(e)) for e in scope.entities)
    raise Unsupported(type(scope).__name__)


# -- the compiled slice ------------------------------------------------------------


class CompiledSlice:
    """One (principal, action) slice as a Python function; None from `decide`: ask cedarpy."""

    def __init__(
        self,
        fn: Callable[[Uid, dict[str, Any]], tuple[list[str], list[str]]],
        resource: Callable[[Any], Uid],
        context: rt.Converter,
        source: str,
    ) -> None:
        self._fn = fn
        self._resource = resource
        self._context = context
        self.source = source

    def decide(self, resource: Any, context: Any) -> Outcome | None:
        """Cedar's (allowed, determining policies) for a clean evaluation; None otherwise."""
        try:
            permits, forbids = self._fn(self._resource(resource), self._context(context))
        except Exception:
            return None
        if forbids:
            return False, tuple(sorted(forbids))
        return bool(permits), tuple(sorted(permits))


def compile_slice(
    policies: Mapping[str, pst.Template],
    principal: Uid,
    action: Uid,
    schema: s.Schema,
    store: rt.Store,
    shared: dict[Any, Any] | None = None,
) -> CompiledSlice:
    """Compile `policies` for `principal` taking `action`; raise Unsupported if it cannot.

    `shared` (one per schema) keeps the request converters, so slices whose actions
    declare the same context and resource types share one.
    """
    declared = schema.actions.get(action)
    if declared is None or principal[0] not in declared.principals:
        raise Unsupported("the schema does not let this principal take this action")
    try:
        rt.converter(s.EntityRef(principal[0]), schema)({"type": principal[0], "id": principal[1]})
    except rt.Fallback:
        raise Unsupported("the principal is not a valid entity of its type") from None
    compiler = _SliceCompiler(principal, action, store, declared.context)
    # policies with the same effect and the same condition are tested once (a condition
    # is a pure function of the request; one that raises sends the whole request to cedarpy)
    groups: dict[tuple[str, str], list[str]] = {}
    for pid, node in policies.items():
        cond = compiler.condition(node)
        if cond is None:
            continue
        target = "p" if node.effect == "permit" else "f"
        groups.setdefault((target, cond.text), []).append(pid)
    body = []
    for (target, text), ids in groups.items():
        if len(ids) == 1:
            body.append(f"    if {text}: {target}.append({ids[0]!r})")
        else:
            body.append(f"    if {text}: {target} += {tuple(ids)!r}")
    lines = ["def decide(R, C):", *compiler.prelude, "    p = []", "    f = []", *body]
    lines.append("    return p, f")
    source = "\n".join(lines) + "\n"
    try:
        code = compile(source, f"<warded slice {principal} {action}>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
        raise Unsupported(f"generated source does not compile: {type(exc).__name__}") from None
    env = dict(compiler.env)
    exec(code, env)
    shared = {} if shared is None else shared
    resource_key = ("resource", tuple(sorted(declared.resources)))
    resource = shared.get(resource_key)
    if resource is None:
        resource = shared.setdefault(resource_key, _resource_converter(declared, schema))
    context_key = ("context", repr(declared.context))
    context = shared.get(context_key)
    if context is None:
        context = shared.setdefault(context_key, _context(declared, schema))
    return CompiledSlice(env["decide"], resource, context, source)


def _resource_converter(declared: s.ActionDecl, schema: s.Schema) -> Callable[[Any], Uid]:
    by_type = {t: rt.converter(s.EntityRef(t), schema) for t in declared.resources}

    def resource(v: Any) -> Uid:
        if type(v) is not dict:
            raise rt.Fallback
        convert = by_type.get(v.get("type"))  # type: ignore[arg-type]
        if convert is None:
            raise rt.Fallback
        return convert(v)  # type: ignore[no-any-return]

    return resource


def _context(declared: s.ActionDecl, schema: s.Schema) -> rt.Converter:
    return conversion.converter(declared.context, schema)
