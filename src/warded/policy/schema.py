"""The types a Cedar schema declares, read from cedarpy's rendering of it.

The compiled decision path needs to know what each action's context holds
(a JSON string is a `decimal` where the schema says so, a `{"type", "id"}`
object an entity) and which principal and resource types each action takes.
cedarpy renders a parsed schema as normalized Cedar schema text
(`str(schema)`), whatever it was loaded from; this module reads that text.

Reading is deliberately narrow: a name that could resolve to more than one
declaration (a common type and an entity type, a namespace-relative and an
absolute name, a builtin shadowed by a declaration) or any syntax this
module does not know raises `UnsupportedSchema`, and the caller then leaves
the whole bundle to cedarpy. Nothing here guesses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

Uid = tuple[str, str]

BUILTINS = ("Bool", "Long", "String", "decimal", "ipaddr", "datetime", "duration")


class UnsupportedSchema(Exception):
    """The schema uses something this reader does not model; cedarpy decides alone."""


# -- types -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prim:
    """`Bool`, `Long`, `String`, or an extension type (`decimal`, `ipaddr`, ...)."""

    name: str


@dataclass(frozen=True, slots=True)
class EntityRef:
    name: str


@dataclass(frozen=True, slots=True)
class SetOf:
    element: Type


@dataclass(frozen=True, slots=True)
class Record:
    attrs: Mapping[str, tuple[Type, bool]]  # name -> (type, required)


Type = Prim | EntityRef | SetOf | Record


@dataclass(frozen=True, slots=True)
class EntityDecl:
    name: str
    attrs: Record
    enum: frozenset[str] | None = None
    tags: Type | None = None


@dataclass(frozen=True, slots=True)
class ActionDecl:
    uid: Uid
    principals: frozenset[str]
    resources: frozenset[str]
    context: Record


@dataclass(frozen=True, slots=True)
class Schema:
    entities: Mapping[str, EntityDecl]
    actions: Mapping[Uid, ActionDecl] = field(default_factory=dict)


# -- reading ---------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s+|//[^\n]*|(?P<str>"(?:[^"\\]|\\.)*")|(?P<sym>::|[{}\[\]<>(),;:=?@])|(?P<id>[A-Za-z_][A-Za-z0-9_]*)""",
    re.DOTALL,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "0": "\0", "'": "'", '"': '"'}


def _unquote(text: str) -> str:
    out = []
    k = 1
    while k < len(text) - 1:
        c = text[k]
        if c != "\\":
            out.append(c)
            k += 1
            continue
        nxt = text[k + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            k += 2
        elif nxt == "u" and text[k + 2 : k + 3] == "{":
            end = text.index("}", k)
            out.append(chr(int(text[k + 3 : end], 16)))
            k = end + 1
        else:
            raise UnsupportedSchema(f"unknown escape \\{nxt}")
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise UnsupportedSchema(f"unexpected character {text[pos]!r}")
        pos = m.end()
        if m.lastgroup:
            out.append((m.lastgroup, m.group()))
    out.append(("end", ""))
    return out


@dataclass
class _RawEntity:
    namespace: str
    name: str
    attrs: object
    enum: frozenset[str] | None
    tags: object | None


@dataclass
class _RawAction:
    namespace: str
    id: str
    principals: list[str]
    resources: list[str]
    context: object | None


class _Reader:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.k = 0
        self.commons: dict[str, tuple[str, object]] = {}  # qualified name -> (namespace, raw)
        self.entities: dict[str, _RawEntity] = {}
        self.actions: list[_RawAction] = []

    # tokens
    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        t = self.toks[self.k]
        return (value is None or t[1] == value) and (kind is None or t[0] == kind)

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        t = self.toks[self.k]
        if not self.peek(value, kind):
            raise UnsupportedSchema(f"expected {value or kind}, found {t[1]!r}")
        self.k += 1
        return t[1]

    def accept(self, value: str) -> bool:
        if self.peek(value):
            self.k += 1
            return True
        return False

    def path(self) -> str:
        parts = [self.take(kind="id")]
        while self.peek("::") and self.toks[self.k + 1][0] == "id":
            self.k += 1
            parts.append(self.take(kind="id"))
        return "::".join(parts)

    def name(self) -> str:
        return _unquote(self.take(kind="str")) if self.peek(kind="str") else self.take(kind="id")

    def annotations(self) -> None:
        while self.accept("@"):
            self.take(kind="id")
            if self.accept("("):
                self.take(kind="str")
                self.take(")")

    # declarations
    def read(self) -> None:
        while not self.peek(kind="end"):
            self.annotations()
            if self.accept("namespace"):
                ns = self.path()
                self.take("{")
                while not self.accept("}"):
                    self.annotations()
                    self.declaration(ns)
            else:
                self.declaration("")

    def declaration(self, ns: str) -> None:
        if self.accept("type"):
            name = self.take(kind="id")
            self.take("=")
            self.commons[_qualify(ns, name)] = (ns, self.type())
        elif self.accept("entity"):
            self.entity(ns)
        elif self.accept("action"):
            self.action(ns)
        else:
            raise UnsupportedSchema(f"unknown declaration {self.toks[self.k][1]!r}")
        self.take(";")

    def entity(self, ns: str) -> None:
        names = [self.take(kind="id")]
        while self.accept(","):
            names.append(self.take(kind="id"))
        enum = None
        attrs: object = ("record", {})
        tags = None
        if self.accept("enum"):
            self.take("[")
            values = [_unquote(self.take(kind="str"))]
            while self.accept(","):
                values.append(_unquote(self.take(kind="str")))
            self.take("]")
            enum = frozenset(values)
        else:
            if self.accept("in"):
                self.entity_types()  # parents: Cedar's own closure in the entity store is used
            self.accept("=")
            if self.peek("{"):
                attrs = self.record()
            if self.accept("tags"):
                tags = self.type()
        for n in names:
            q = _qualify(ns, n)
            if q in self.entities:
                raise UnsupportedSchema(f"entity {q} declared twice")
            self.entities[q] = _RawEntity(ns, n, attrs, enum, tags)

    def action(self, ns: str) -> None:
        ids = [self.name()]
        while self.accept(","):
            ids.append(self.name())
        if self.accept("in"):
            if self.accept("["):
                while not self.accept("]"):
                    self.action_ref()
                    self.accept(",")
            else:
                self.action_ref()
        principals: list[str] = []
        resources: list[str] = []
        context: object | None = None
        applies = False
        if self.accept("appliesTo"):
            applies = True
            self.take("{")
            while not self.accept("}"):
                key = self.take(kind="id")
                self.take(":")
                if key == "principal":
                    principals = self.entity_types()
                elif key == "resource":
                    resources = self.entity_types()
                elif key == "context":
                    context = self.type()
                else:
                    raise UnsupportedSchema(f"unknown appliesTo field {key!r}")
                self.accept(",")
        if self.peek("attributes"):
            raise UnsupportedSchema("action attributes")
        for i in ids:
            if applies:
                self.actions.append(_RawAction(ns, i, principals, resources, context))

    def action_ref(self) -> None:
        if self.peek(kind="id"):
            self.path()
            self.take("::")
        self.take(kind="str")

    def entity_types(self) -> list[str]:
        if not self.accept("["):
            return [self.path()]
        out: list[str] = []
        while not self.accept("]"):
            out.append(self.path())
            self.accept(",")
        return out

    def type(self) -> object:
        if self.peek("{"):
            return self.record()
        if self.peek("Set") and self.toks[self.k + 1][1] == "<":
            self.k += 2
            element = self.type()
            self.take(">")
            return ("set", element)
        return ("name", self.path())

    def record(self) -> object:
        self.take("{")
        attrs: dict[str, tuple[object, bool]] = {}
        while not self.accept("}"):
            self.annotations()
            if self.accept("}"):
                break
            name = self.name()
            required = not self.accept("?")
            self.take(":")
            if name in attrs:
                raise UnsupportedSchema(f"attribute {name!r} declared twice")
            attrs[name] = (self.type(), required)
            self.accept(",")
        return ("record", attrs)


def _qualify(ns: str, name: str) -> str:
    return f"{ns}::{name}" if ns else name


class _Resolver:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.done: dict[str, Type] = {}
        self.active: set[str] = set()

    def entity_name(self, ns: str, name: str) -> str:
        found = {c for c in (_qualify(ns, name), name) if c in self.r.entities}
        if len(found) != 1:
            raise UnsupportedSchema(f"entity type {name!r} is not uniquely declared")
        return found.pop()

    def type(self, ns: str, raw: object) -> Type:
        kind = raw[0]  # type: ignore[index]
        if kind == "set":
            return SetOf(self.type(ns, raw[1]))  # type: ignore[index]
        if kind == "record":
            return Record(
                {
                    k: (self.type(ns, t), req)
                    for k, (t, req) in raw[1].items()  # type: ignore[index]
                }
            )
        return self.named(ns, raw[1])  # type: ignore[index]

    def named(self, ns: str, name: str) -> Type:
        candidates: list[tuple[str, str]] = []
        for q in dict.fromkeys((_qualify(ns, name), name)):
            if q in self.r.commons:
                candidates.append(("common", q))
            if q in self.r.entities:
                candidates.append(("entity", q))
        builtin = name[len("__cedar::") :] if name.startswith("__cedar::") else name
        if builtin in BUILTINS:
            candidates.append(("builtin", builtin))
        if len(candidates) != 1:
            raise UnsupportedSchema(f"type name {name!r} is not uniquely declared")
        kind, q = candidates[0]
        if kind == "builtin":
            return Prim(q)
        if kind == "entity":
            return EntityRef(q)
        if q in self.done:
            return self.done[q]
        if q in self.active:
            raise UnsupportedSchema(f"common type {q} refers to itself")
        self.active.add(q)
        common_ns, raw = self.r.commons[q]
        resolved = self.type(common_ns, raw)
        self.active.discard(q)
        self.done[q] = resolved
        return resolved


def read_schema(text: str) -> Schema:
    """The declarations of a schema, from its Cedar schema text (`str(cedarpy.Schema)`)."""
    reader = _Reader(text)
    reader.read()
    resolve = _Resolver(reader)
    entities: dict[str, EntityDecl] = {}
    for q, e in reader.entities.items():
        attrs = resolve.type(e.namespace, e.attrs)
        assert isinstance(attrs, Record)
        tags = None if e.tags is None else resolve.type(e.namespace, e.tags)
        entities[q] = EntityDecl(q, attrs, e.enum, tags)
    actions: dict[Uid, ActionDecl] = {}
    for a in reader.actions:
        uid = (_qualify(a.namespace, "Action"), a.id)
        context = Record({}) if a.context is None else resolve.type(a.namespace, a.context)
        if not isinstance(context, Record):
            raise UnsupportedSchema(f"context of {uid} is not a record")
        if uid in actions:
            raise UnsupportedSchema(f"action {uid} declared twice")
        actions[uid] = ActionDecl(
            uid,
            frozenset(resolve.entity_name(a.namespace, p) for p in a.principals),
            frozenset(resolve.entity_name(a.namespace, r) for r in a.resources),
            context,
        )
    return Schema(entities, actions)
