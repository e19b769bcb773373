"""Arguments become Cedar values per the tool's JSON Schema; what has no Cedar form is refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warded.errors import ArgumentError
from warded.policy.values import decimal, to_cedar

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
