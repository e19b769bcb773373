"""Tool argument validation: jsonschema_rs decides, jsonschema words the refusal."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from warded.tools import make_tool

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "recipient": {"type": "string", "minLength": 3, "pattern": "^[A-Z]{2}[0-9]+"},
        "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6},
        "count": {"type": "integer", "minimum": -5},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
        "nested": {
            "type": "object",
            "properties": {"flag": {"type": "boolean"}, "note": {"type": ["string", "null"]}},
            "required": ["flag"],
            "additionalProperties": False,
        },
        "choice": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]},
    },
    "required": ["recipient", "amount"],
    "additionalProperties": False,
}

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-10, 10)
    | st.floats(-10, 2e6, allow_nan=False)
    | st.sampled_from(["", "a", "b", "GB12", "gb12", "GB", "abc", "\u00e9\u00e9\u00e9"])
)
values = st.recursive(
    leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["flag", "note", "x"]), c),
    max_leaves=6,
)
arguments = st.dictionaries(
    st.sampled_from(["recipient", "amount", "count", "tags", "nested", "choice", "other"]),
    values,
)


TOOL = make_tool("t", SCHEMA, lambda **_: None)
REFERENCE = jsonschema.Draft202012Validator(SCHEMA)


@settings(max_examples=300, deadline=None)
@given(args=arguments)
def test_jsonschema_rs_and_jsonschema_agree_and_a_refusal_names_the_constraint(
    args: dict[str, Any],
) -> None:
    tool, reference = TOOL, REFERENCE
    assert tool.fast is not None
    assert tool.fast.is_valid(args) == reference.is_valid(args), args
    problem = tool.check(args)
    if reference.is_valid(args):
        assert problem is None
    else:
        assert problem is not None
        assert "violates" in problem
        assert "'" in problem  # the constraint's name, never the value


def test_a_schema_jsonschema_rs_cannot_build_is_validated_by_jsonschema() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "https://example.invalid/a.json"}}}
    tool = make_tool("t", schema, lambda **_: None)
    assert tool.fast is None
    assert tool.check({"b": 1}) is None
