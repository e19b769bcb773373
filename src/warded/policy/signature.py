"""A tool's arguments as the Cedar schema declares them, written as JSON Schema.

A gate types a call's arguments from the tool's JSON Schema (`integer` →
Long, `number` → decimal). Where there is no tool — `warded check`, a test
case without a `tools:` entry, the requests `warded diff` generates — the
JSON Schema is derived from the action's `context.args` record instead, so
`1200` is a decimal wherever the policy says `amount: decimal`.

cedarpy exposes no schema structure, so the record type is read from the
validator: comparing `context.args` with `{}` fails with a message that spells
the declared type, e.g. `{amount: decimal,limit?: Long,tags: Set<String>,}`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import cedarpy

from warded.errors import WardedError
from warded.policy.bundle import PolicyBundle

_TYPES = re.compile(r"the types \{\} and (\{.*\}) are not compatible", re.S)
_SCALARS: dict[str, dict[str, Any]] = {
    "Long": {"type": "integer"},
    "String": {"type": "string"},
    "Bool": {"type": "boolean"},
    "decimal": {"type": "number"},
}


class SignatureError(WardedError):
    """The schema's type for a tool's arguments could not be read."""


def arguments(bundle: PolicyBundle, tool: str) -> dict[str, Any]:
    """The JSON Schema of `tool`'s arguments, from its action's `context.args`."""
    action = bundle.actions.get(tool)
    if action is None:
        raise SignatureError(f"the bundle has no action {tool!r}")
    probe = (
        f"permit (principal, action == {action[0]}::{json.dumps(action[1])}, resource) "
        "when { context.args == {} };"
    )
    errors = [e.error for e in cedarpy.validate_policies(probe, bundle.schema).errors]
    if not errors:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    found = _TYPES.search(errors[0])
    if found is None:
        raise SignatureError(f"cannot read the arguments of {tool!r}: {errors[0]}")
    try:
        schema, rest = _type(found.group(1))
    except (IndexError, ValueError) as exc:
        raise SignatureError(f"cannot read the arguments of {tool!r}: {exc}") from None
    if rest:
        raise SignatureError(f"cannot read the arguments of {tool!r}: {found.group(1)}")
    return schema


def _type(text: str) -> tuple[dict[str, Any], str]:
    """One type from the front of `text`, and what follows it."""
    if text.startswith("{"):
        return _record(text[1:])
    if text.startswith("Set<"):
        items, rest = _type(text[4:])
        if not rest.startswith(">"):
            raise ValueError(f"expected '>' at {rest[:20]!r}")
        return {"type": "array", "items": items}, rest[1:]
    name = re.match(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*", text)
    if name is None:
        raise ValueError(f"expected a type at {text[:20]!r}")
    base = name.group(0).rsplit("::", 1)[-1] if name.group(0).startswith("__cedar::") else None
    scalar = _SCALARS.get(base or name.group(0))
    return dict(scalar) if scalar else {"type": "string"}, text[name.end() :]


def _record(text: str) -> tuple[dict[str, Any], str]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    while not text.startswith("}"):
        colon = text.index(": ")
        name, optional = text[:colon], text[colon - 1] == "?"
        name = name[:-1] if optional else name
        value, text = _type(text[colon + 2 :])
        properties[name] = value
        if not optional:
            required.append(name)
        if not text.startswith(","):
            raise ValueError(f"expected ',' at {text[:20]!r}")
        text = text[1:]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema, text[1:]
