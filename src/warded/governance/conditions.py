"""Policy conditions in plain language, translated from Cedar's parsed tree.

`plain(expr)` says what a `when`/`unless` expression means in words:
comparisons, set membership, `has`, `like`, entity membership, session
labels and counters, the time, the input scanners' findings, argument
provenance (`context.provenance.<arg>`) and the links inside free text
(`context.links.<arg>.count`, `context.links.<arg>.provenance`). A part it cannot translate is shown
as Cedar (`cedar(expr)`, printed from the same tree), never dropped.
`conjuncts` splits a clause at its top-level `&&`, so each condition can be
listed on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from cedarpy import pst

SOURCES = {  # argument provenance (`warded.provenance`): where a value came from
    "user": "the user's request",
    "approved": "a value a person approved",
    "untrusted": "untrusted content",
    "injected": "injected orders (what the injection scanner flagged in a tool's output)",
}
SCANS = {
    "secrets": "a secret (a key, a token, a password)",
    "pii": "personal data",
    "injection": "a prompt injection",
}
NOW = {
    "hour": "the hour of the day (UTC, 0-23)",
    "weekday": "the day of the week (UTC, 1 = Monday)",
    "epoch": "the time (seconds since 1970, UTC)",
}
_COMPARE = {
    "less": "is less than",
    "less_eq": "is at most",
    "greater": "is more than",
    "greater_eq": "is at least",
    "decimal_less_than": "is less than",
    "decimal_less_eq": "is at most",
    "decimal_greater": "is more than",
    "decimal_greater_eq": "is at least",
    "eq": "is",
    "not_eq": "is not",
}
_NEGATED = {
    "less": "is at least",
    "less_eq": "is more than",
    "greater": "is at most",
    "greater_eq": "is less than",
    "decimal_less_than": "is at least",
    "decimal_less_eq": "is more than",
    "decimal_greater": "is at most",
    "decimal_greater_eq": "is less than",
    "eq": "is not",
    "not_eq": "is",
}
_CEDAR_BINARY = {
    "eq": "==",
    "not_eq": "!=",
    "less": "<",
    "less_eq": "<=",
    "greater": ">",
    "greater_eq": ">=",
    "and": "&&",
    "or": "||",
    "add": "+",
    "sub": "-",
    "mul": "*",
    "in": "in",
}
_CEDAR_METHOD = {
    "contains": "contains",
    "contains_all": "containsAll",
    "contains_any": "containsAny",
    "get_tag": "getTag",
    "has_tag": "hasTag",
    "is_in_range": "isInRange",
    "offset": "offset",
    "duration_since": "durationSince",
    "decimal_less_than": "lessThan",
    "decimal_less_eq": "lessThanOrEqual",
    "decimal_greater": "greaterThan",
    "decimal_greater_eq": "greaterThanOrEqual",
}
_CEDAR_UNARY_METHOD = {
    "is_empty": "isEmpty",
    "is_ipv4": "isIpv4",
    "is_ipv6": "isIpv6",
    "is_loopback": "isLoopback",
    "is_multicast": "isMulticast",
    "to_date": "toDate",
    "to_time": "toTime",
    "to_milliseconds": "toMilliseconds",
    "to_seconds": "toSeconds",
    "to_minutes": "toMinutes",
    "to_hours": "toHours",
    "to_days": "toDays",
}
_CEDAR_FUNCTION = ("datetime", "decimal", "duration", "ip")


def conjuncts(expr: pst.Expr) -> Iterator[pst.Expr]:
    """The parts of a top-level chain of `&&`, left to right."""
    if isinstance(expr, pst.BinaryOp) and expr.op == "and":
        yield from conjuncts(expr.left)
        yield from conjuncts(expr.right)
    else:
        yield expr


def plain(expr: pst.Expr) -> str:
    """`expr` in words; untranslatable parts as `Cedar`."""
    return _Plain().say(expr)


def cedar(expr: pst.Expr) -> str:
    """`expr` printed as Cedar source (fully parenthesized where it matters)."""
    if isinstance(expr, pst.Var):
        return expr.name
    if isinstance(expr, pst.Slot):
        return f"?{expr.name}"
    if isinstance(expr, pst.BoolLit):
        return "true" if expr.value else "false"
    if isinstance(expr, pst.LongLit):
        return str(expr.value)
    if isinstance(expr, pst.StringLit):
        return json.dumps(expr.value, ensure_ascii=False)
    if isinstance(expr, pst.EntityLit):
        return entity(expr.value)
    if isinstance(expr, pst.GetAttr):
        base = cedar(expr.base)
        if expr.attr.isidentifier():
            return f"{base}.{expr.attr}"
        return f"{base}[{json.dumps(expr.attr, ensure_ascii=False)}]"
    if isinstance(expr, pst.HasAttr):
        return f"{cedar(expr.base)} has {'.'.join(expr.attrs)}"
    if isinstance(expr, pst.Like):
        return f"{cedar(expr.base)} like {_pattern(expr.pattern)}"
    if isinstance(expr, pst.Is):
        tail = f" in {cedar(expr.in_expr)}" if expr.in_expr is not None else ""
        return f"{cedar(expr.base)} is {expr.entity_type}{tail}"
    if isinstance(expr, pst.IfThenElse):
        parts = (cedar(expr.cond), cedar(expr.then_expr), cedar(expr.else_expr))
        return "if {} then {} else {}".format(*parts)
    if isinstance(expr, pst.Set):
        return "[" + ", ".join(cedar(e) for e in expr.elements) + "]"
    if isinstance(expr, pst.Record):
        inner = ", ".join(f"{json.dumps(k)}: {cedar(v)}" for k, v in expr.fields.items())
        return "{" + inner + "}"
    if isinstance(expr, pst.UnaryOp):
        if expr.op == "not":
            return f"!{_wrapped(expr.arg)}"
        if expr.op == "neg":
            return f"-{_wrapped(expr.arg)}"
        if expr.op in _CEDAR_FUNCTION:
            return f"{expr.op}({cedar(expr.arg)})"
        return f"{_wrapped(expr.arg)}.{_CEDAR_UNARY_METHOD.get(expr.op, expr.op)}()"
    if isinstance(expr, pst.BinaryOp):
        if expr.op in _CEDAR_BINARY:
            left, right = _wrapped(expr.left), _wrapped(expr.right)
            return f"{left} {_CEDAR_BINARY[expr.op]} {right}"
        method = _CEDAR_METHOD.get(expr.op, expr.op)
        return f"{_wrapped(expr.left)}.{method}({cedar(expr.right)})"
    return repr(expr)  # pragma: no cover - every node type is handled above


def entity(uid: pst.EntityUid) -> str:
    return f"{uid.type}::{json.dumps(uid.id, ensure_ascii=False)}"


def _wrapped(expr: pst.Expr) -> str:
    simple = (pst.Var, pst.BoolLit, pst.LongLit, pst.StringLit, pst.EntityLit, pst.GetAttr)
    text = cedar(expr)
    if isinstance(expr, simple) or (isinstance(expr, pst.UnaryOp) and expr.op != "not"):
        return text
    if isinstance(expr, pst.BinaryOp) and expr.op not in _CEDAR_BINARY:
        return text
    return f"({text})"


def _pattern(pattern: tuple[pst.PatternElem, ...]) -> str:
    out = "".join(
        "*" if isinstance(p, pst.Wildcard) else ("\\*" if p.value == "*" else p.value)
        for p in pattern
    )
    return json.dumps(out, ensure_ascii=False).replace("\\\\*", "\\*")


class _Plain:
    """The translator; each method returns words, or None where it has none."""

    def say(self, expr: pst.Expr) -> str:
        words = self._words(expr)
        return words if words is not None else f"`{cedar(expr)}`"

    def _words(self, expr: pst.Expr) -> str | None:
        if isinstance(expr, pst.BinaryOp):
            return self._binary(expr)
        if isinstance(expr, pst.UnaryOp):
            return self._unary(expr)
        if isinstance(expr, pst.HasAttr):
            subject = self._value(pst.GetAttr(expr.base, expr.attrs[0]))
            for attr in expr.attrs[1:]:
                subject = f"{subject}, with {attr}"
            return f"{subject} is given" if subject else None
        if isinstance(expr, pst.Like):
            subject = self._value(expr.base)
            return f"{subject} matches the pattern {_pattern(expr.pattern)}" if subject else None
        if isinstance(expr, pst.Is):
            subject = self._value(expr.base)
            if subject is None:
                return None
            where = f" in {self._value(expr.in_expr)}" if expr.in_expr is not None else ""
            return f"{subject} is a {expr.entity_type}{where}"
        if isinstance(expr, pst.BoolLit):
            return "always" if expr.value else "never"
        scan = self._scan(expr)
        if scan is not None:
            return f"the input scanners found {scan} in the arguments"
        if isinstance(expr, pst.GetAttr) and (subject := self._value(expr)) is not None:
            return f"{subject} is true"
        return None

    def _binary(self, e: pst.BinaryOp) -> str | None:
        if e.op == "and":
            return " and ".join(self._part(c) for c in conjuncts(e))
        if e.op == "or":
            return "either " + " or ".join(self._part(c) for c in _disjuncts(e))
        if e.op in _COMPARE:
            left, right = self._value(e.left), self._value(e.right)
            if left is None or right is None:
                return None
            return f"{left} {_COMPARE[e.op]} {right}"
        if e.op == "in":
            left, right = self._value(e.left), self._value(e.right)
            return f"{left} is in {right}" if left and right else None
        if e.op in ("contains", "contains_all", "contains_any"):
            return self._membership(e)
        if e.op == "is_in_range":
            left, right = self._value(e.left), self._value(e.right)
            return f"{left} is in the range {right}" if left and right else None
        return None

    def _unary(self, e: pst.UnaryOp) -> str | None:
        if e.op == "not":
            return self._negation(e.arg)
        if e.op == "is_empty":
            sources = _provenance(e.arg)
            if sources is not None:
                return f"{sources} came from no known source (the model made it up)"
            subject = self._value(e.arg)
            return f"{subject} is empty" if subject else None
        return None

    def _negation(self, inner: pst.Expr) -> str:
        if isinstance(inner, pst.BinaryOp) and inner.op in _NEGATED:
            left, right = self._value(inner.left), self._value(inner.right)
            if left is not None and right is not None:
                return f"{left} {_NEGATED[inner.op]} {right}"
        if isinstance(inner, pst.BinaryOp) and inner.op in ("contains", "contains_any"):
            words = self._membership(inner, negated=True)
            if words is not None:
                return words
        if isinstance(inner, pst.HasAttr):
            subject = self._value(pst.GetAttr(inner.base, inner.attrs[-1]))
            if subject is not None and len(inner.attrs) == 1:
                return f"{subject} is not given"
        scan = self._scan(inner)
        if scan is not None:
            return f"the input scanners found no {scan} in the arguments"
        if isinstance(inner, pst.GetAttr) and (subject := self._value(inner)) is not None:
            return f"{subject} is false"
        if isinstance(inner, pst.UnaryOp) and inner.op == "is_empty":
            sources = _provenance(inner.arg)
            if sources is not None:
                return f"{sources} came from at least one known source"
        return f"not ({self.say(inner)})"

    def _membership(self, e: pst.BinaryOp, negated: bool = False) -> str | None:
        labels = _is_path(e.left, "context", "session", "labels")
        sources = _provenance(e.left)
        if e.op == "contains" and isinstance(e.right, pst.StringLit):
            value = e.right.value
            if labels:
                verb = "is not labelled" if negated else "is labelled"
                return f"the session {verb} {json.dumps(value)}"
            if sources is not None and negated and _is_links(e.left):
                return f"not {sources} came from {_source(value)}"
            if sources is not None:
                verb = "did not come from" if negated else "came from"
                return f"{sources} {verb} {_source(value)}"
        if e.op == "contains" and isinstance(e.left, pst.Set):
            subject = self._value(e.right)
            options = [self._value(x) for x in e.left.elements]
            if subject is not None and all(o is not None for o in options):
                verb = "is not one of" if negated else "is one of"
                return f"{subject} {verb} {', '.join(o for o in options if o)}"
        if isinstance(e.right, pst.Set) and (labels or sources is not None):
            names = [x.value for x in e.right.elements if isinstance(x, pst.StringLit)]
            if len(names) == len(e.right.elements):
                quantifier = "all of" if e.op == "contains_all" else "any of"
                if e.op == "contains":
                    return None
                if labels:
                    verb = "has none of the labels" if negated else f"is labelled {quantifier}"
                    return f"the session {verb} {', '.join(json.dumps(n) for n in names)}"
                words = [_source(n) for n in names]
                if _is_links(e.left) and e.op == "contains_any":  # a source all links share
                    if negated:
                        return f"not {sources} came from " + ", and not every one from ".join(words)
                    return f"{sources} came from " + ", or every one from ".join(words)
                if negated:
                    return f"{sources} came from none of {', '.join(words)}"
                if e.op == "contains_all":
                    return f"{sources} came from all of {', '.join(words)}"
                return f"{sources} came from {_either(words)}"
        left, right = self._value(e.left), self._value(e.right)
        if left is None or right is None:
            return None
        if e.op == "contains":
            return f"{left} {'does not contain' if negated else 'contains'} {right}"
        if e.op == "contains_any":
            return f"{left} {'contains none of' if negated else 'contains any of'} {right}"
        return f"{left} contains all of {right}"

    def _part(self, expr: pst.Expr) -> str:
        words = self.say(expr)
        if isinstance(expr, pst.BinaryOp) and expr.op in ("and", "or"):
            return f"({words})"
        return words

    def _scan(self, expr: pst.Expr) -> str | None:
        for name, what in SCANS.items():
            if _is_path(expr, "context", "scan", name):
                return what
        return None

    def _value(self, expr: pst.Expr | None) -> str | None:
        """A value or attribute in words, or None."""
        if expr is None:
            return None
        if isinstance(expr, pst.LongLit):
            return str(expr.value)
        if isinstance(expr, pst.StringLit):
            return json.dumps(expr.value, ensure_ascii=False)
        if isinstance(expr, pst.BoolLit):
            return "true" if expr.value else "false"
        if isinstance(expr, pst.EntityLit):
            return entity(expr.value)
        if isinstance(expr, pst.UnaryOp) and expr.op in ("decimal", "ip", "datetime", "duration"):
            if isinstance(expr.arg, pst.StringLit):
                return expr.arg.value
            return None
        if isinstance(expr, pst.UnaryOp) and expr.op == "neg":
            inner = self._value(expr.arg)
            return f"-{inner}" if inner else None
        if isinstance(expr, pst.Set):
            items = [self._value(x) for x in expr.elements]
            return "[" + ", ".join(i for i in items if i) + "]" if all(items) else None
        if isinstance(expr, pst.Var):
            return {"principal": "the agent", "resource": "the resource"}.get(expr.name)
        path = _path(expr)
        if path is None:
            return None
        head, rest = path[0], path[1:]
        if head == "context" and len(rest) >= 2 and rest[0] == "args":
            return f"argument {'.'.join(rest[1:])}"
        if head == "context" and rest[:1] == ("session",) and len(rest) == 2:
            return {
                "calls": "the number of calls made in the session so far",
                "labels": "the session's labels",
                "id": "the session id",
            }.get(rest[1])
        if head == "context" and rest[:1] == ("now",) and len(rest) == 2:
            return NOW.get(rest[1])
        if head == "context" and len(rest) == 2 and rest[0] == "provenance":
            return f"the sources of argument {rest[1]}"
        if head == "context" and len(rest) == 3 and rest[0] == "links":
            return {
                "count": f"the number of links in argument {rest[1]}",
                "provenance": f"the sources of the links in argument {rest[1]}",
            }.get(rest[2])
        if head in ("principal", "resource") and rest:
            who = "the agent" if head == "principal" else "the resource"
            return f"{who}'s {'.'.join(rest)}"
        return None


def _disjuncts(expr: pst.Expr) -> Iterator[pst.Expr]:
    if isinstance(expr, pst.BinaryOp) and expr.op == "or":
        yield from _disjuncts(expr.left)
        yield from _disjuncts(expr.right)
    else:
        yield expr


def _path(expr: pst.Expr) -> tuple[str, ...] | None:
    """`context.args.amount` as ("context", "args", "amount"); None if not such a path."""
    attrs: list[str] = []
    while isinstance(expr, pst.GetAttr):
        attrs.append(expr.attr)
        expr = expr.base
    if not isinstance(expr, pst.Var) or not attrs:
        return None
    return (expr.name, *reversed(attrs))


def _is_path(expr: pst.Expr, *names: str) -> bool:
    return _path(expr) == names


def _provenance(expr: pst.Expr) -> str | None:
    """For `context.provenance.<arg>`: "the value of argument <arg>"; for
    `context.links.<arg>.provenance` (`warded.links`): "every link in argument <arg>"."""
    path = _path(expr)
    if path is not None and len(path) == 3 and path[:2] == ("context", "provenance"):
        return f"the value of argument {path[2]}"
    if path is not None and len(path) == 4 and path[:2] == ("context", "links"):
        return f"every link in argument {path[2]}" if path[3] == "provenance" else None
    return None


def _is_links(expr: pst.Expr) -> bool:
    """Whether `expr` is `context.links.<arg>.provenance` (the sources every link shares)."""
    path = _path(expr)
    return path is not None and len(path) == 4 and path[:2] == ("context", "links")


def _source(name: str) -> str:
    if name.startswith("tool:"):
        return f"the output of tool {name[5:]}"
    return SOURCES.get(name, f"the source or label {json.dumps(name)}")


def _either(words: list[str]) -> str:
    """ "a", "a or b", "a, b or c"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"
