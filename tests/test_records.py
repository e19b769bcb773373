"""No decision record is ever lost (issue 8, item 1).

Arguments are frozen to canonical JSON that reads back to the same bytes, so
whatever a caller sends, the record of its call can be sealed; and when a
full record cannot be (a redactor that answers something JSON cannot hold), a
reduced one is written instead. Every refusal's `ref` and every allowed
call's decision are records in the log.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import TEST_KEY
from tiny import tiny
from warded import (
    Gate,
    MemoryStore,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    Store,
    verify,
)
from warded.canonical import args_digest, canonical_json

BOT = Principal.agent("bot")
BUNDLE = tiny(
    {"probe": "{ n?: Long, s?: String }"},
    '@id("probe")\npermit (principal, action == Action::"probe", resource);\n',
)


class Ran:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return "ran"


def probe_gate(store: Store, **kw: Any) -> tuple[Gate, Ran]:
    gate = Gate(BUNDLE, store=store, key=TEST_KEY, **kw)
    ran = Ran()
    gate.register("probe", {"type": "object"}, ran)
    return gate, ran


def by_id(store: Store) -> dict[str, dict[str, Any]]:
    return {r.body["id"]: r.body for r in store.records()}


# -- integral floats beyond 2**53 ---------------------------------------------------


@pytest.mark.requirement("G11")
@pytest.mark.parametrize("where", ["n", "pad"])
@pytest.mark.parametrize(
    "number", [1e20, -1e20, 1e16, 2.0**53, 9.99e20, 123456789012345678.0], ids=str
)
def test_an_integral_float_beyond_2_53_is_invalid_arguments_and_its_refusal_is_in_the_log(
    tmp_path: Path, where: str, number: float
) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    gate, ran = probe_gate(store)

    answer = gate.call(BOT, "probe", {where: number}, Session("s"))

    assert isinstance(answer, Refusal)
    assert answer.code == "invalid_arguments"
    assert ran.calls == []
    record = by_id(store)[answer.ref]
    assert (record["kind"], record["decision"], record["code"]) == (
        "decision",
        "deny",
        "invalid_arguments",
    )
    assert verify(store.records()).ok


@pytest.mark.requirement("G7")
@pytest.mark.parametrize("number", [1e21, -1e21, 1.5, 2.0**53 - 1, 1e300, 5e-324], ids=str)
def test_floats_that_round_trip_are_frozen_as_they_are(tmp_path: Path, number: float) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    gate, ran = probe_gate(store)

    answer = gate.call(BOT, "probe", {"pad": number}, Session("s"))

    # `pad` is not in the Cedar schema (or out of Long's range): refused, and recorded
    assert isinstance(answer, Refusal)
    assert ran.calls == []
    record = by_id(store)[answer.ref]
    assert record["args"] == {"pad": number}
    assert record["args_digest"] == args_digest(canonical_json({"pad": number}), TEST_KEY)


# -- any arguments at all -------------------------------------------------------------

EDGES = [1e20, -1e20, 2.0**53, 2.0**53 + 2, 1e21, 1e16, -0.0, 5e-324, 1.7976931348623157e308]
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(EDGES)
ints = st.integers() | st.sampled_from([2**53, -(2**53), 2**63, 2**64, 10**400])
texts = st.text() | st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u2028", "\U0001f600"])
keys = texts | st.integers() | st.none() | st.tuples(st.integers())
leaves = st.none() | st.booleans() | ints | floats | texts
junk = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.dictionaries(keys, inner, max_size=4)
        | st.dictionaries(texts, inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A value nested deeper than Python's recursion limit, or just under it."""
    depth = draw(st.sampled_from([50, 900, 5000]))
    value: Any = draw(leaves)
    for k in range(depth):
        value = [value] if k % 2 else {"k": value}
    return value


valid = st.fixed_dictionaries(
    {}, optional={"n": st.integers(-(2**53) + 1, 2**53 - 1), "s": st.text()}
)
arguments = (
    valid
    | st.dictionaries(st.sampled_from(["n", "s", "pad"]), floats | ints | texts, max_size=3)
    | st.dictionaries(texts, junk, max_size=4)
    | st.dictionaries(keys, junk, max_size=3)
    | st.builds(lambda d, v: {**d, "pad": v}, valid, junk | deep())
    | junk
)
tool_names = st.just("probe") | texts | st.integers()
session_ids = st.just("s") | st.text(min_size=1, max_size=40)


@pytest.mark.requirement("G11")
@pytest.mark.requirement("G1")
def test_for_any_arguments_every_refusal_and_every_allowed_call_is_a_record_in_the_log(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    gate, ran = probe_gate(store)
    seen = {"allowed": 0, "refused": 0}

    @given(args=arguments, tool=tool_names, session=session_ids)
    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def one_call(args: Any, tool: Any, session: str) -> None:
        before = store.checkpoint().size
        runs = len(ran.calls)
        answer = gate.call(BOT, tool, args, Session(session))
        new = [r.body for r in store.records(before)]
        decisions = [b for b in new if b["kind"] == "decision"]
        assert len(decisions) == 1, new
        (decision,) = decisions
        if isinstance(answer, Refusal):
            seen["refused"] += 1
            assert decision["id"] == answer.ref
            assert (decision["decision"], decision["code"]) == ("deny", answer.code)
            assert len(ran.calls) == runs
            return
        seen["allowed"] += 1
        assert answer == "ran"
        assert len(ran.calls) == runs + 1
        assert decision["decision"] == "allow"
        assert decision["args_digest"] == args_digest(canonical_json(args), TEST_KEY)
        outcomes = [b for b in new if b["kind"] == "outcome"]
        assert [(o["call"], o["outcome"]) for o in outcomes] == [(decision["call"], "ok")]

    one_call()
    assert verify(store.records()).ok
    assert min(seen.values()) > 10, seen


# -- a record that cannot be sealed in full ---------------------------------------------


class Unsealable:
    """A redactor whose copy of the arguments has no canonical JSON form."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def redact(self, sensitive: frozenset[str], value: Any) -> Any:
        return self.answer


@pytest.mark.requirement("G11")
@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
@pytest.mark.parametrize(
    ("copy", "args", "expected"),
    [
        (math.nan, {"n": 1}, "allowed"),
        (object(), {"n": 1}, "allowed"),
        ({"n": 1e20}, {"n": 1}, "allowed"),
        ({1: "non-str key"}, {"s": "x"}, "allowed"),
        (object(), {"n": "not a number"}, "invalid"),
    ],
    ids=["nan-allowed", "object-allowed", "1e20-allowed", "int-key-allowed", "object-invalid"],
)
def test_a_redactor_answering_something_unsealable_leaves_a_reduced_record_and_nothing_runs(
    tmp_path: Path, store_kind: str, copy: Any, args: dict[str, Any], expected: str
) -> None:
    store: Store = MemoryStore() if store_kind == "memory" else SQLiteStore(tmp_path / "a.db")
    gate = Gate(BUNDLE, store=store, key=TEST_KEY, redactor=Unsealable(copy))
    ran = Ran()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}
    gate.register("probe", schema, ran)

    answer = gate.call(BOT, "probe", args, Session("s"))

    assert isinstance(answer, Refusal)
    assert answer.code == ("invalid_arguments" if expected == "invalid" else "unavailable")
    assert ran.calls == []
    record = by_id(store)[answer.ref]
    assert record["args"] is None
    assert record["request"] is None
    assert "could not be sealed" in record["detail"]["reduced"]
    assert record["args_digest"] == args_digest(canonical_json(args), TEST_KEY)
    assert (record["principal"], record["tool"], record["decision"]) == (str(BOT), "probe", "deny")
    assert verify(store.records()).ok
