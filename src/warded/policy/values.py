"""Turn frozen JSON arguments into Cedar values, guided by the tool's JSON Schema.

Cedar has no floats and no null: a JSON Schema `number` becomes a Cedar
`decimal` (at most four fractional digits; given as its string form, which
Cedar's schema-based parsing reads as a decimal where the schema declares
one, and rejects otherwise), an `integer` a `Long` (64-bit),
arrays become sets, objects records, and null-valued properties are left out.
Without schema guidance an integral number is a `Long` and any other a
`decimal`: canonical JSON does not keep `1200.0` apart from `1200`, so a tool
whose amounts must be decimals says `"type": "number"` in its schema.
A value with no Cedar form raises ArgumentError, which the gate answers with
`invalid_arguments` before any policy is consulted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from warded.errors import ArgumentError

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
DECIMAL_MAX = Decimal("922337203685477.5807")


def to_cedar(
    value: Any, schema: Mapping[str, Any] | None, root: Mapping[str, Any] | None = None
) -> Any:
    """Convert `value` (already valid against `schema`) to Cedar's JSON value form."""
    root = root if root is not None else (schema or {})
    schema = _resolve(schema, root)
    schema = _branch(value, schema, root)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if _wants_decimal(value, schema):
            return decimal(value)
        if isinstance(value, float):
            value = int(value)
        if not LONG_MIN <= value <= LONG_MAX:
            raise ArgumentError("integer out of the 64-bit range")
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        items = schema.get("items") if schema else None
        out = []
        for v in value:
            if v is None:
                raise ArgumentError("null inside an array has no Cedar value")
            out.append(to_cedar(v, items, root))
        return out
    if isinstance(value, dict):
        props = schema.get("properties", {}) if schema else {}
        extra = schema.get("additionalProperties") if schema else None
        sub_default = extra if isinstance(extra, Mapping) else None
        return {
            k: to_cedar(v, props.get(k, sub_default), root)
            for k, v in value.items()
            if v is not None
        }
    if value is None:
        raise ArgumentError("null has no Cedar value")
    raise ArgumentError(f"unsupported value type {type(value).__name__}")


Convert = Callable[[Any], Any]


def converter(schema: Mapping[str, Any]) -> Convert:
    """`to_cedar` for one schema, with everything that depends only on the schema done once.

    `converter(schema)(value)` returns what `to_cedar(value, schema)` returns
    and raises what it raises, for every value: the `$ref`s, the `anyOf` /
    `oneOf` branch for each JSON type, the properties and the types of each
    node are looked up here, once per tool, instead of on every call.
    """
    return _Node.of(schema, schema or {}, {}).convert


class _Shape:
    """What `to_cedar` reads from one (resolved, branched) schema node."""

    __slots__ = ("default", "integer", "items", "number", "props", "schema")

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self.schema = schema
        types = _types(schema)
        self.integer = "integer" in types
        self.number = "number" in types
        self.items: Convert = _NONE.convert  # no schema guidance
        self.props: dict[str, Convert] = {}
        self.default: Convert = _NONE.convert


class _Node:
    """One schema node as `to_cedar` receives it (before `$ref` and branch resolution)."""

    __slots__ = ("generic", "raw", "root", "shapes")

    def __init__(self, raw: Any, root: Mapping[str, Any]) -> None:
        self.raw = raw
        self.root = root
        self.generic = False  # a node only `to_cedar` itself reads the same way
        self.shapes: dict[str | None, _Shape] = {}

    @classmethod
    def of(cls, raw: Any, root: Mapping[str, Any], memo: dict[int, _Node]) -> _Node:
        found = memo.get(id(raw))
        if found is not None:
            return found
        node = memo[id(raw)] = cls(raw, root)
        try:
            node._build(memo)
        except Exception:  # e.g. a boolean subschema: to_cedar decides what it does
            node.generic = True
        return node

    def _build(self, memo: dict[int, _Node]) -> None:
        if self.raw is not None and not isinstance(self.raw, Mapping):
            raise TypeError("not a schema object")
        resolved = _resolve(self.raw, self.root)
        by_id: dict[int, _Shape] = {}
        samples: dict[str | None, Any] = {
            "boolean": True,
            "integer": 0,
            "number": 0.5,
            "string": "",
            "array": [],
            "object": {},
            None: None,
        }
        for kind, sample in samples.items():
            branched = _branch(sample, resolved, self.root)
            shape = by_id.get(id(branched))
            if shape is None:
                shape = by_id[id(branched)] = _Shape(branched)
            self.shapes[kind] = shape
        for shape in by_id.values():
            schema = shape.schema
            if not schema:
                continue
            items = schema.get("items")
            if items is not None:
                shape.items = _Node.of(items, self.root, memo).convert
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            shape.props = {k: _Node.of(v, self.root, memo).convert for k, v in props.items()}
            if isinstance(extra, Mapping):
                shape.default = _Node.of(extra, self.root, memo).convert

    def convert(self, value: Any) -> Any:
        """`to_cedar(value, raw, root)`. Containers recurse as `to_cedar` does, a frame
        per list and two per object, so a value deep enough for one is for the other."""
        if self.generic:
            return to_cedar(value, self.raw, self.root)
        t = type(value)
        if t is str or t is bool:  # the plain JSON types first, as the general path reads them
            return value
        if t is dict:
            shape = self.shapes["object"]
            props, default = shape.props, shape.default
            return {k: props.get(k, default)(v) for k, v in value.items() if v is not None}
        if t is list:
            items = self.shapes["array"].items
            out = []
            for v in value:
                if v is None:
                    raise ArgumentError("null inside an array has no Cedar value")
                out.append(items(v))
            return out
        if t is int:
            shape = self.shapes["integer"]
            if not shape.integer and shape.number:
                return decimal(value)
            if not LONG_MIN <= value <= LONG_MAX:
                raise ArgumentError("integer out of the 64-bit range")
            return value
        if t is float:
            shape = self.shapes["number"]
            if not (shape.integer and value.is_integer()):
                return decimal(value)
        shape = self.shapes[_JSON_TYPE.get(t)]
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            if shape.integer and (isinstance(value, int) or float(value).is_integer()):
                wants = False
            else:
                wants = shape.number or isinstance(value, float)
            if wants:
                return decimal(value)
            if isinstance(value, float):
                value = int(value)
            if not LONG_MIN <= value <= LONG_MAX:
                raise ArgumentError("integer out of the 64-bit range")
            return value
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            items = shape.items
            out = []
            for v in value:
                if v is None:
                    raise ArgumentError("null inside an array has no Cedar value")
                out.append(items(v))
            return out
        if isinstance(value, dict):
            props, default = shape.props, shape.default
            return {k: props.get(k, default)(v) for k, v in value.items() if v is not None}
        if value is None:
            raise ArgumentError("null has no Cedar value")
        raise ArgumentError(f"unsupported value type {type(value).__name__}")


def decimal(value: int | float | Decimal) -> str:
    """A Cedar decimal's text; raises ArgumentError beyond 4 fractional digits or range."""
    if type(value) is float and abs(value) < 9e14:
        text = repr(value)
        if "e" not in text and len(text) - text.index(".") <= 5:
            return text  # already Cedar's form: digits, a point, one to four decimals
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ArgumentError("not a decimal number") from None
    if not d.is_finite() or abs(d) > DECIMAL_MAX:
        raise ArgumentError("number out of Cedar decimal range")
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4 and d != d.quantize(Decimal("0.0001")):
        raise ArgumentError("more than 4 fractional digits")
    text = format(d.quantize(Decimal("0.0001")).normalize(), "f")
    if "." not in text:
        text += ".0"
    return text


def _wants_decimal(value: int | float, schema: Mapping[str, Any] | None) -> bool:
    types = _types(schema)
    if "integer" in types and (isinstance(value, int) or float(value).is_integer()):
        return False
    if "number" in types:
        return True
    return isinstance(value, float)


def _types(schema: Mapping[str, Any] | None) -> set[str]:
    if not schema:
        return set()
    t = schema.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return {x for x in t if isinstance(x, str)}
    return set()


_JSON_TYPE = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _branch(
    value: Any, schema: Mapping[str, Any] | None, root: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """Pick the anyOf/oneOf branch that fits `value`'s JSON type."""
    if not schema:
        return schema
    options = schema.get("anyOf") or schema.get("oneOf")
    if not options:
        return schema
    kind = _JSON_TYPE.get(type(value))
    for option in options:
        option = _resolve(option, root)
        types = _types(option)
        if kind in types or (kind == "integer" and "number" in types):
            return option
    return None


_NONE = _Node(None, {})  # a value with no schema guidance


def _resolve(schema: Mapping[str, Any] | None, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    seen = 0
    while schema and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return None
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part) if isinstance(node, Mapping) else None
        schema = node if isinstance(node, Mapping) else None
        seen += 1
    return schema


def cedar_type(
    schema: Mapping[str, Any] | None, root: Mapping[str, Any] | None = None
) -> str | None:
    """The Cedar schema type (text) that `to_cedar` gives values valid against `schema`.

    `integer` → `Long`, `number` → `decimal`, `string` → `String`, `boolean`
    → `Bool`, arrays → `Set<…>`, objects with `properties` → records whose
    optional attributes are those not `required` or that may be null. A
    schema with no single Cedar type (a free-form object, a union of kinds,
    an untyped array) gives None: a value for it cannot be checked against a
    Cedar schema, so requests carrying one are denied.
    """
    root = root if root is not None else (schema or {})
    schema = _resolve(schema, root)
    if not schema:
        return None
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        found = {cedar_type(o, root) for o in options if _types(_resolve(o, root)) != {"null"}}
        return found.pop() if len(found) == 1 else None
    kinds = _types(schema) - {"null"}
    if not kinds and "enum" in schema:
        kinds = {_JSON_TYPE[type(v)] for v in schema["enum"] if type(v) in _JSON_TYPE}
    if not kinds and "const" in schema and type(schema["const"]) in _JSON_TYPE:
        kinds = {_JSON_TYPE[type(schema["const"])]}
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    if len(kinds) != 1:
        return None
    (kind,) = kinds
    if kind == "array":
        item = cedar_type(schema.get("items"), root)
        return None if item is None else f"Set<{item}>"
    if kind == "object":
        record, untyped = cedar_record(schema, root)
        return None if untyped else record
    return {"integer": "Long", "number": "decimal", "string": "String", "boolean": "Bool"}.get(kind)


def cedar_record(
    schema: Mapping[str, Any], root: Mapping[str, Any] | None = None
) -> tuple[str | None, list[str]]:
    """The Cedar record type of an object schema's `properties`, and the keys with no Cedar type.

    The record leaves the untyped keys out; it is None if the schema has no
    `properties` (a free-form object).
    """
    root = root if root is not None else schema
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return None, []
    required = set(schema.get("required") or ())
    fields, untyped = [], []
    for key, prop in props.items():
        inner = cedar_type(prop, root)
        if inner is None:
            untyped.append(key)
            continue
        optional = key not in required or _nullable(prop, root)
        fields.append(f"{_attribute(key)}{'?' if optional else ''}: {inner}")
    return ("{ " + ", ".join(fields) + " }" if fields else "{}"), untyped


def _nullable(schema: Any, root: Mapping[str, Any]) -> bool:
    schema = _resolve(schema, root) if isinstance(schema, Mapping) else None
    if not schema:
        return False
    options = schema.get("anyOf") or schema.get("oneOf") or ()
    return "null" in _types(schema) or any(_types(_resolve(o, root)) == {"null"} for o in options)


def _attribute(key: str) -> str:
    """A record attribute name as Cedar schema text: bare if an identifier, else quoted."""
    if key.isidentifier() and key.isascii():
        return key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_NONE._build({})
