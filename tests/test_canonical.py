"""Canonical JSON is RFC 8785: the fast path must give the reference library's bytes,
and what is frozen reads back into a value with the same bytes (what was checked is
what runs, and what is recorded can always be sealed)."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from warded.canonical import _plain, canonical_json, thaw
from warded.errors import ArgumentError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


@pytest.mark.requirement("G7")
@given(json_values)
@settings(max_examples=600, deadline=None)
def test_canonical_json_equals_the_rfc8785_reference_or_refuses_what_cannot_round_trip(
    value: Any,
) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ArgumentError):
            canonical_json(value)
        return
    try:
        round_trips = rfc8785.dumps(thaw(expected)) == expected
    except rfc8785.CanonicalizationError:
        round_trips = False  # e.g. 1e20 is written as 21 digits, which read back as an int
    if not round_trips:
        with pytest.raises(ArgumentError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.requirement("G7")
@given(json_values)
@settings(max_examples=600, deadline=None)
def test_frozen_bytes_read_back_into_a_value_with_the_same_bytes(value: Any) -> None:
    try:
        frozen = canonical_json(value)
    except ArgumentError:
        return
    assert canonical_json(thaw(frozen)) == frozen


@pytest.mark.parametrize(
    "value",
    [
        {"\U0001f600": 1, "\ue000": 2, "a": 3},
        [5.0, -0.0, 1e21, 1e-7, 9007199254740991.0, 0.1, 1e-5, 1.5e300],
        {"k": '\x00\x1f\x7f\u2028\ud7ff"\\'},
        [2**53 - 1, -(2**53) + 1],
    ],
)
def test_edge_values_match_the_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        float("nan"),
        math.inf,
        "\ud800",
        {"a": object()},
        1e20,  # RFC 8785 writes 21 digits, which read back as an integer beyond 2**53
        {"pad": [2.0**53]},
        -123456789012345680.0,
    ],
)
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises(ArgumentError):
        canonical_json(value)


plain_values = st.recursive(
    st.booleans()
    | st.none()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-4, max_value=1e16).map(lambda f: round(f, 3))
    | st.text(alphabet=st.characters(codec="utf-8")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(
                alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=4
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@pytest.mark.requirement("G7")
@given(plain_values)
@settings(max_examples=500, deadline=None)
def test_the_orjson_fast_path_gives_rfc8785s_bytes_wherever_the_guard_lets_it(value: Any) -> None:
    if not _plain(value):
        return
    assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == rfc8785.dumps(value)
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.requirement("G7")
@given(json_values)
@settings(max_examples=600, deadline=None)
def test_thaw_reads_canonical_bytes_as_json_loads_does(value: Any) -> None:
    try:
        frozen = canonical_json(value)
    except ArgumentError:
        try:  # bytes canonical_json refuses to make: thaw still reads them as json.loads
            frozen = rfc8785.dumps(value)
        except rfc8785.CanonicalizationError:
            return
    thawed, reference = thaw(frozen), json.loads(frozen)
    assert thawed == reference
    assert _types(thawed) == _types(reference)  # 1 and 1.0 (and True) compare equal in Python


@pytest.mark.parametrize(
    "frozen",
    [
        b'"\\ud800"',
        b'{"a":"\\udfff x"}',
        b"[18446744073709551616]",
        b"[-9223372036854775809]",
        b'{"a":100000000000000000000}',
        b"[" * 300 + b"]" * 300,
    ],
)
def test_thaw_reads_what_orjson_refuses_or_misreads_as_json_loads_does(frozen: bytes) -> None:
    assert thaw(frozen) == json.loads(frozen)
    assert _types(thaw(frozen)) == _types(json.loads(frozen))


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__
