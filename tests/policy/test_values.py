"""Arguments become Cedar values per the tool's JSON Schema; what has no Cedar form is refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warded.errors import ArgumentError
from warded.policy.values import converter, decimal, to_cedar

NUM = {"type": "number"}
INT = {"type": "integer"}


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        (5, NUM, "5.0"),
        (5.25, NUM, "5.25"),
        (-0.5, NUM, "-0.5"),
        (5, INT, 5),
        (5.0, INT, 5),
        (True, {"type": "boolean"}, True),
        ("x", {"type": "string"}, "x"),
        ([1, 2], {"type": "array", "items": NUM}, ["1.0", "2.0"]),
        ({"a": 1, "b": None}, {"type": "object", "properties": {"a": NUM}}, {"a": "1.0"}),
        (3, {"anyOf": [INT, {"type": "null"}]}, 3),
        (3.5, {"anyOf": [NUM, {"type": "null"}]}, "3.5"),
        ({"x": 2}, {"$ref": "#/$defs/P", "$defs": {"P": {"properties": {"x": NUM}}}}, {"x": "2.0"}),
        (7, None, 7),
        (7.5, None, "7.5"),
    ],
)
def test_values_convert_to_their_cedar_form(value: Any, schema: Any, expected: Any) -> None:
    assert to_cedar(value, schema) == expected


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        (0.00001, NUM),
        (1e20, NUM),
        (2**63, INT),
        (-(2**63) - 1, INT),
        ([None], {"type": "array"}),
        (object(), None),
    ],
)
def test_values_without_a_cedar_form_are_refused(value: Any, schema: Any) -> None:
    with pytest.raises(ArgumentError):
        to_cedar(value, schema)


def test_decimal_keeps_four_fractional_digits_and_no_more() -> None:
    assert decimal(12.3456) == "12.3456"
    assert decimal(100) == "100.0"
    assert decimal(1.10) == "1.1"
    with pytest.raises(ArgumentError):
        decimal(12.34567)


@given(st.floats(min_value=-9.2e14, max_value=9.2e14, allow_nan=False))
@settings(max_examples=500, deadline=None)
def test_the_decimal_fast_path_agrees_with_exact_decimal_arithmetic(x: float) -> None:
    from decimal import Decimal

    try:
        text = decimal(x)
    except ArgumentError:
        assert Decimal(repr(x)) != Decimal(repr(x)).quantize(Decimal("0.0001"))
        return
    assert Decimal(text) == Decimal(repr(x))
    whole, _, frac = text.partition(".")
    assert whole.lstrip("-").isdigit()
    assert 1 <= len(frac) <= 4


_DEFS = {"P": {"type": "object", "properties": {"x": NUM, "n": INT, "p": {"$ref": "#/$defs/P"}}}}
SCHEMAS: list[Any] = [
    None,
    {},
    NUM,
    INT,
    {"type": ["integer", "number"]},
    {"type": ["integer", "null"]},
    {"type": "array", "items": NUM},
    {"type": "array", "items": {"type": "array", "items": INT}},
    {"type": "array", "items": True},  # a boolean subschema: to_cedar raises on it
    {
        "type": "object",
        "properties": {"a": NUM, "b": INT, "c": {"type": "array", "items": NUM}},
        "additionalProperties": INT,
    },
    {"type": "object", "properties": {"a": NUM}, "additionalProperties": True},
    {"anyOf": [INT, {"type": "null"}, {"type": "array", "items": NUM}]},
    {"oneOf": [NUM, {"type": "string"}, {"type": "object", "properties": {"k": INT}}]},
    {"anyOf": [{"$ref": "#/$defs/P"}, INT], "$defs": _DEFS},
    {"$ref": "#/$defs/P", "$defs": _DEFS},
    {"$ref": "#/$defs/missing"},
    {"$ref": "http://example.com/x"},
    {"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/A"}}},  # a $ref loop
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.5, 5.0, 1e15, 1.00001, -0.0, 2.0**63])
    | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "x", "n", "p", "k", "z"]), children)
    ),
    max_leaves=12,
)


def _outcome(convert: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", convert(value)
    except ArgumentError as exc:
        return "ArgumentError", str(exc)
    except Exception as exc:
        return type(exc).__name__, None


@pytest.mark.requirement("G19")
@given(st.sampled_from(range(len(SCHEMAS))), json_values)
@settings(max_examples=1500, deadline=None)
def test_a_tools_precompiled_conversion_is_to_cedar(which: int, value: Any) -> None:
    """The per-tool converter answers (or raises) exactly as `to_cedar` on every value."""
    schema = SCHEMAS[which]
    expected = _outcome(lambda v: to_cedar(v, schema), value)
    got = _outcome(converter(schema), value)
    assert got == expected
    assert repr(got) == repr(expected)  # 1 and 1.0, True and 1 are told apart


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},
        {"type": "object", "properties": {"a": {"$ref": "#"}}},
        {"type": "object", "additionalProperties": {"type": "array", "items": NUM}},
    ],
)
def test_the_precompiled_conversion_goes_as_deep_as_to_cedar(schema: Any) -> None:
    """Nested as deep as Python's stack allows: the same answer, or the same RecursionError."""

    def nest(depth: int, container: str) -> Any:
        value: Any = 1.5
        for _ in range(depth):
            value = [value] if container == "list" else {"a": value}
        return {"x": value}

    convert = converter(schema)
    for container in ("list", "object"):
        for depth in range(1, 1000, 7):
            value = nest(depth, container)
            assert _outcome(convert, value) == _outcome(lambda v: to_cedar(v, schema), value)
