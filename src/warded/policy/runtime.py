"""Cedar values in Python, and the operations compiled slices call.

Representation: Bool `bool`, Long `int`, String `str`, decimal `Dec`, an
entity uid a `(type, id)` tuple, a record a `dict`, a set a `CSet` holding
the canonical keys of its elements. Any extension value the compiled path
does not model (ipaddr, datetime, duration) is an `Opaque`.

Every operation here either returns exactly what Cedar would, or raises
`Fallback`: wherever Cedar would report an evaluation error (a type error,
an overflow, a missing attribute or entity, a malformed decimal), and
wherever this module is not sure. Python's own equality is never trusted
across types (`True == 1` in Python, not in Cedar): `ceq` compares canonical
keys, in which a Bool and a Long can never meet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from warded.policy import schema as s

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
Uid = tuple[str, str]
EMPTY: frozenset[Any] = frozenset()


class Fallback(Exception):
    """Cedar may error here, or this path cannot be sure: cedarpy decides."""


def fail(*_: object) -> Any:
    raise Fallback


class Dec:
    """A Cedar decimal: an integer count of ten-thousandths, within 64 bits."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return type(other) is Dec and other.n == self.n

    def __hash__(self) -> int:
        return hash((Dec, self.n))

    def __repr__(self) -> str:
        return f"Dec({self.n})"


class CSet:
    """A Cedar set: the canonical keys of its elements (see `key`)."""

    __slots__ = ("keys",)

    def __init__(self, keys: frozenset[Any]) -> None:
        self.keys = keys

    def __repr__(self) -> str:
        return f"CSet({set(self.keys)!r})"


class Opaque:
    """A value the compiled path does not model; touching it means Fallback."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"Opaque({self.what!r})"


class _BoolKey:
    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{self.value}>"


_TRUE, _FALSE = _BoolKey(True), _BoolKey(False)


def key(v: Any) -> Any:
    """A hashable key equal to another's exactly when Cedar's `==` holds."""
    t = type(v)
    if t is str or t is int or t is tuple or t is Dec:
        return v
    if t is bool:
        return _TRUE if v else _FALSE
    if t is CSet:
        return ("S", v.keys)
    if t is dict:
        return ("R", frozenset((k, key(x)) for k, x in v.items()))
    raise Fallback


def cset(items: Iterable[Any]) -> CSet:
    return CSet(frozenset(key(v) for v in items))


_ATOMS = (str, int, bool, tuple, Dec)


def ceq(a: Any, b: Any) -> bool:
    t = type(a)
    if t is type(b) and t in _ATOMS:
        return bool(a == b)
    return bool(key(a) == key(b))


def boolean(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise Fallback


def long(v: Any) -> int:
    if type(v) is int:
        return v
    raise Fallback


def checked(n: int) -> int:
    if LONG_MIN <= n <= LONG_MAX:
        return n
    raise Fallback


def add(a: Any, b: Any) -> int:
    return checked(long(a) + long(b))


def sub(a: Any, b: Any) -> int:
    return checked(long(a) - long(b))


def mul(a: Any, b: Any) -> int:
    return checked(long(a) * long(b))


def neg(a: Any) -> int:
    return checked(-long(a))


def lt(a: Any, b: Any) -> bool:
    return long(a) < long(b)


def le(a: Any, b: Any) -> bool:
    return long(a) <= long(b)


def gt(a: Any, b: Any) -> bool:
    return long(a) > long(b)


def ge(a: Any, b: Any) -> bool:
    return long(a) >= long(b)


def dec(v: Any) -> Dec:
    if type(v) is Dec:
        return v
    raise Fallback


def dlt(a: Any, b: Any) -> bool:
    return dec(a).n < dec(b).n


def dle(a: Any, b: Any) -> bool:
    return dec(a).n <= dec(b).n


def dgt(a: Any, b: Any) -> bool:
    return dec(a).n > dec(b).n


def dge(a: Any, b: Any) -> bool:
    return dec(a).n >= dec(b).n


_DECIMAL = re.compile(r"(-?)([0-9]+)\.([0-9]{1,4})")


_PARSED: dict[str, Dec] = {}  # recently parsed decimals (a Dec is never changed)
_PARSED_MAX = 4096


def parse_decimal(text: Any) -> Dec:
    """Cedar's `decimal("...")`: digits, a point, one to four digits, within 64 bits."""
    if type(text) is not str:
        raise Fallback
    found = _PARSED.get(text)
    if found is not None:
        return found
    m = _DECIMAL.fullmatch(text)
    if m is None:
        raise Fallback
    sign, whole, frac = m.groups()
    n = int(whole) * 10_000 + int(frac.ljust(4, "0"))
    value = Dec(checked(-n if sign else n))
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[text] = value
    return value


def cs(v: Any) -> CSet:
    if type(v) is CSet:
        return v
    raise Fallback


def contains(a: Any, b: Any) -> bool:
    return key(b) in cs(a).keys


def contains_all(a: Any, b: Any) -> bool:
    return cs(b).keys <= cs(a).keys


def contains_any(a: Any, b: Any) -> bool:
    return not cs(a).keys.isdisjoint(cs(b).keys)


def is_empty(a: Any) -> bool:
    return not cs(a).keys


def uid(v: Any) -> Uid:
    if type(v) is tuple:
        return v
    raise Fallback


def is_type(v: Any, entity_type: str) -> bool:
    return uid(v)[0] == entity_type


def like(v: Any, matcher: Callable[[str], bool]) -> bool:
    if type(v) is str:
        return matcher(v)
    raise Fallback


def matcher(segments: tuple[str, ...]) -> Callable[[str], bool]:
    """Cedar's `like`: the literal segments between `*` wildcards, matched greedily."""
    if len(segments) == 1:
        exact = segments[0]
        return lambda text: text == exact
    first, last, middle = segments[0], segments[-1], segments[1:-1]

    def match(text: str) -> bool:
        pos, end = len(first), len(text) - len(last)
        if end < pos or not text.startswith(first) or not text.endswith(last):
            return False
        for seg in middle:
            found = text.find(seg, pos, end)
            if found < 0:
                return False
            pos = found + len(seg)
        return True

    return match


class Store:
    """The entity store of a bundle, as compiled slices read it."""

    __slots__ = ("ancestors", "attrs")

    def __init__(
        self, attrs: Mapping[Uid, dict[str, Any]], ancestors: Mapping[Uid, frozenset[Uid]]
    ) -> None:
        self.attrs = attrs
        self.ancestors = ancestors

    def is_in(self, a: Any, b: Any) -> bool:
        """Cedar's `a in b`, b an entity or a set of entities."""
        a = uid(a)
        if type(b) is tuple:
            return a == b or b in self.ancestors.get(a, EMPTY)
        keys = cs(b).keys
        for k in keys:
            if type(k) is not tuple or type(k[1]) is not str:
                raise Fallback  # an element that is not an entity: Cedar's type error
        return a in keys or not self.ancestors.get(a, EMPTY).isdisjoint(keys)

    def get(self, v: Any, attr: str) -> Any:
        t = type(v)
        if t is dict:
            return v[attr]
        if t is tuple:
            return self.attrs[v][attr]
        raise Fallback

    def has(self, v: Any, attr: str) -> bool:
        t = type(v)
        if t is dict:
            return attr in v
        if t is tuple:
            found = self.attrs.get(v)
            return found is not None and attr in found
        raise Fallback

    def has_path(self, v: Any, path: tuple[str, ...]) -> bool:
        """`v has a.b.c`: `v has a && v.a has b && v.a.b has c`."""
        last = len(path) - 1
        for k, attr in enumerate(path):
            if not self.has(v, attr):
                return False
            if k < last:
                v = self.get(v, attr)
        return True


# -- values from JSON --------------------------------------------------------------


def text(v: Any) -> str:
    """A string Cedar can take: no lone surrogates (they have no UTF-8 form)."""
    if type(v) is not str:
        raise Fallback
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise Fallback from None
    return v


def stored(v: Any) -> Any:
    """A value from Cedar's own rendering of its entity store (explicit `__entity`/`__extn`)."""
    t = type(v)
    if t is bool or t is str:
        return v
    if t is int:
        return checked(v)
    if t is list:
        try:
            return cset([stored(x) for x in v])
        except Fallback:
            return Opaque("set")  # an element (at any depth) the compiled path does not model
    if t is dict:
        if "__entity" in v or "__extn" in v:
            if len(v) != 1:
                return Opaque("record")
            if "__entity" in v:
                ref = v["__entity"]
                return (text(ref["type"]), text(ref["id"]))
            ext = v["__extn"]
            if ext.get("fn") == "decimal":
                return parse_decimal(ext.get("arg"))
            return Opaque(str(ext.get("fn")))
        return {k: stored(x) for k, x in v.items()}
    return Opaque(t.__name__)


def store_from(entity_list: Iterable[Mapping[str, Any]]) -> Store:
    attrs: dict[Uid, dict[str, Any]] = {}
    ancestors: dict[Uid, frozenset[Uid]] = {}
    for e in entity_list:
        u = (e["uid"]["type"], e["uid"]["id"])
        attrs[u] = {k: stored(v) for k, v in e.get("attrs", {}).items()}
        ancestors[u] = frozenset((p["type"], p["id"]) for p in e.get("parents", []))
    return Store(attrs, ancestors)


Converter = Callable[[Any], Any]


def converter(t: s.Type, schema: s.Schema) -> Converter:
    """A function from a request's JSON value to Cedar's, as schema-based parsing reads it.

    It raises Fallback where Cedar would reject the value (and wherever this
    module cannot tell whether Cedar would).
    """
    if isinstance(t, s.Prim):
        if t.name == "Long":
            return lambda v: checked(v) if type(v) is int else fail()
        if t.name == "Bool":
            return lambda v: v if type(v) is bool else fail()
        if t.name == "String":
            return text
        if t.name == "decimal":
            return _decimal_value
        return fail  # ipaddr, datetime, duration: not modelled
    if isinstance(t, s.EntityRef):
        decl = schema.entities.get(t.name)
        if decl is None:
            return fail
        return _entity_converter(t.name, decl.enum)
    if isinstance(t, s.SetOf):
        element = converter(t.element, schema)
        return lambda v: cset([element(x) for x in v]) if type(v) is list else fail()
    fields = {k: (converter(ft, schema), req) for k, (ft, req) in t.attrs.items()}
    required = frozenset(k for k, (_, req) in fields.items() if req)

    def record(v: Any) -> dict[str, Any]:
        if type(v) is not dict or not required <= v.keys():
            raise Fallback
        out = {}
        for k, x in v.items():
            f = fields.get(k)
            if f is None:
                raise Fallback
            out[k] = f[0](x)
        return out

    return record


def _decimal_value(v: Any) -> Dec:
    if type(v) is dict:
        ext = v.get("__extn")
        if len(v) != 1 or type(ext) is not dict or ext.keys() != {"fn", "arg"}:
            raise Fallback
        if ext["fn"] != "decimal":
            raise Fallback
        v = ext["arg"]
    return parse_decimal(v)


def _entity_converter(name: str, enum: frozenset[str] | None) -> Converter:
    def entity(v: Any) -> Uid:
        if type(v) is not dict:
            raise Fallback
        if len(v) == 1 and "__entity" in v:
            v = v["__entity"]
            if type(v) is not dict:
                raise Fallback
        if v.keys() != {"type", "id"} or v["type"] != name:
            raise Fallback
        entity_id = text(v["id"])
        if enum is not None and entity_id not in enum:
            raise Fallback
        return (name, entity_id)

    return entity
