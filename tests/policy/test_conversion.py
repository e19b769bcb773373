"""The generated converters (`conversion`) accept, refuse and build exactly what the reference
converter (`runtime.converter`) does, on random Cedar types and random JSON values (G19)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warded.policy import conversion
from warded.policy import runtime as rt
from warded.policy import schema as s

SCHEMA = s.Schema(
    {
        "User": s.EntityDecl("User", s.Record({})),
        "Color": s.EntityDecl("Color", s.Record({}), enum=frozenset({"red", "blue"})),
    }
)
PRIMS = [s.Prim(n) for n in ("Long", "Bool", "String", "decimal", "ipaddr")]
types: st.SearchStrategy[s.Type] = st.recursive(
    st.sampled_from([*PRIMS, s.EntityRef("User"), s.EntityRef("Color"), s.EntityRef("Gone")]),
    lambda inner: (
        inner.map(s.SetOf)
        | st.dictionaries(
            st.sampled_from(["a", "b", "c", "d"]), st.tuples(inner, st.booleans()), max_size=4
        ).map(s.Record)
    ),
    max_leaves=8,
)
atoms = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.sampled_from([rt.LONG_MAX, rt.LONG_MIN, rt.LONG_MAX + 1, rt.LONG_MIN - 1, 0, 1])
    | st.sampled_from(["1.5", "-0.0001", "1.23456", "x", "é", "a\ud800", "red", "blue", ""])
    | st.floats(allow_nan=False)
)
entities = st.fixed_dictionaries(
    {"type": st.sampled_from(["User", "Color", "Gone"]), "id": st.sampled_from(["red", "u", ""])}
)
values = st.recursive(
    atoms
    | entities
    | entities.map(lambda e: {"__entity": e})
    | st.sampled_from(["1.5", "2.0"]).map(lambda a: {"__extn": {"fn": "decimal", "arg": a}}),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), inner, max_size=5)
    ),
    max_leaves=12,
)


def _outcome(convert: rt.Converter, value: Any) -> tuple[str, Any]:
    try:
        return "ok", _normal(convert(value))
    except rt.Fallback:
        return "Fallback", None


def _normal(v: Any) -> Any:
    """A Cedar value in a form equal to another's exactly when the values are the same
    (a set's keys hold no Bool, which Python's equality would confuse with a Long)."""
    if type(v) is dict:
        return ("record", frozenset((k, _normal(x)) for k, x in v.items()))
    if type(v) is rt.CSet:
        return ("set", v.keys)
    return (type(v).__name__, v)


def _matching(t: s.Type) -> st.SearchStrategy[Any]:
    """Values shaped like `t` (so the generated code's accepting paths are reached)."""
    if isinstance(t, s.Prim):
        return {
            "Long": st.integers(min_value=-(2**63) - 2, max_value=2**63 + 1),
            "Bool": st.booleans(),
            "String": st.text(max_size=3),
            "decimal": st.sampled_from(["1.5", "-3.0001", "1.23456"]),
        }.get(t.name, atoms)
    if isinstance(t, s.EntityRef):
        return st.fixed_dictionaries({"type": st.just(t.name), "id": st.sampled_from(["u", "red"])})
    if isinstance(t, s.SetOf):
        return st.lists(_matching(t.element), max_size=3)
    return st.fixed_dictionaries(
        {k: _matching(ft) for k, (ft, req) in t.attrs.items() if req},
        optional={k: _matching(ft) for k, (ft, req) in t.attrs.items() if not req},
    )


@pytest.mark.requirement("G19")
@given(st.data(), types)
@settings(max_examples=800, deadline=None)
def test_the_generated_converter_is_the_reference_converter(data: st.DataObject, t: Any) -> None:
    value = data.draw(st.one_of(values, _matching(t)))
    expected = _outcome(rt.converter(t, SCHEMA), value)
    assert _outcome(conversion.converter(t, SCHEMA), value) == expected


def test_the_generated_converter_accepts_a_context_of_warded_s_shape() -> None:
    args = s.Record({"n": (s.Prim("Long"), True), "d": (s.Prim("decimal"), False)})
    context = s.Record(
        {
            "args": (args, True),
            "session": (s.Record({"labels": (s.SetOf(s.Prim("String")), True)}), True),
        }
    )
    value = {"args": {"n": 3, "d": "1.5"}, "session": {"labels": ["pii", "untrusted"]}}
    converted = conversion.converter(context, SCHEMA)(value)
    assert _normal(converted) == _normal(rt.converter(context, SCHEMA)(value))
    assert converted["session"]["labels"].keys == frozenset({"pii", "untrusted"})
