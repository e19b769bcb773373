"""OpenAI's strict mode, where a tool's JSON Schema allows it.

With `strict: true` OpenAI constrains the model's arguments to the schema,
but accepts only a subset of JSON Schema: every object closed
(`additionalProperties: false`) with all its properties required, a root of
type object, a `$ref` with no sibling keywords, and a short list of keywords.
A schema outside that subset is sent as it is, with `strict: false`; it is
never loosened or tightened to fit, so the model is asked for exactly the
arguments the gate will accept.

One rewrite keeps the meaning exactly: a top-level property that may be
omitted, whose default is `null` and whose schema admits `null`, becomes a
required property (the model writes `null`). The gate fills a missing
top-level property with its default before it freezes the arguments, so both
spellings give the gate the same arguments.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_KEYWORDS = frozenset(
    {
        # any schema
        "type", "description", "title", "enum", "const", "anyOf", "$ref", "$defs", "definitions",
        # objects
        "properties", "required", "additionalProperties",
        # strings
        "pattern", "format",
        # numbers
        "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
        # arrays
        "items", "minItems", "maxItems",
    }
)  # fmt: skip
_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)


def strict_parameters(parameters: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema to send to OpenAI for a tool's parameters, and whether it can be strict.

    Returns a new schema: the strict form when the tool's schema allows it,
    otherwise a copy of the schema as it is, with False.
    """
    schema = copy.deepcopy(dict(parameters))
    candidate = _nulls_required(copy.deepcopy(schema))
    if candidate.get("type") == "object" and _fits(candidate, candidate):
        return candidate, True
    return schema, False


def _nulls_required(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema
    required = list(schema.get("required", []))
    for name, prop in properties.items():
        if name in required or not isinstance(prop, dict):
            continue
        if "default" in prop and prop["default"] is None and _admits_null(prop):
            del prop["default"]
            required.append(name)
    schema["required"] = required
    return schema


def _admits_null(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    branches = schema.get("anyOf")
    return isinstance(branches, list) and any(
        isinstance(b, Mapping) and _admits_null(b) for b in branches
    )


def _fits(schema: object, root: Mapping[str, Any]) -> bool:
    """Whether `schema` is inside OpenAI's strict subset (limits on size are not checked)."""
    if not isinstance(schema, Mapping) or not _KEYWORDS.issuperset(schema):
        return False
    if "$ref" in schema:
        ref = schema["$ref"]
        return len(schema) == 1 and isinstance(ref, str) and (ref == "#" or ref.startswith("#/"))
    if schema is root and "anyOf" in schema:
        return False
    if "format" in schema and schema["format"] not in _FORMATS:
        return False
    kind = schema.get("type")
    properties = schema.get("properties")
    if kind == "object" or properties is not None or "additionalProperties" in schema:
        properties = {} if properties is None else properties
        if not isinstance(properties, Mapping) or schema.get("additionalProperties") is not False:
            return False
        required = schema.get("required", [])
        if not isinstance(required, list) or sorted(required) != sorted(properties):
            return False
        if not all(_fits(p, root) for p in properties.values()):
            return False
    if "items" in schema and not _fits(schema["items"], root):
        return False
    branches = schema.get("anyOf", [])
    if not isinstance(branches, list) or not all(_fits(b, root) for b in branches):
        return False
    for key in ("$defs", "definitions"):
        defs = schema.get(key, {})
        if schema is not root and key in schema:
            return False
        if not isinstance(defs, Mapping) or not all(_fits(d, root) for d in defs.values()):
            return False
    return True
