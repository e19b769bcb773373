"""Tool argument validation: jsonschema_rs decides, jsonschema words the refusal."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from support import TEST_KEY
from tiny import tiny
from warded import Gate, MemoryStore, Principal, Refusal, Session, ToolDefinitionError
from warded.tools import make_tool

BOT = Principal.agent("bot")

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


LINE = "{ to: String, amount?: Long }"
PAY = tiny(
    {"pay": f"{{ payment?: {LINE}, batch?: Set<{LINE}> }}"},
    '@id("pay")\npermit (principal, action, resource);\n'
    '@id("cap")\nforbid (principal, action, resource)\n'
    "when { context.args has payment && context.args.payment has amount && "
    "context.args.payment.amount > 1000 };\n",
)


class Payment(BaseModel):
    """What an upstream does with the arguments it receives: fills its schema's defaults."""

    to: str
    amount: int = 5000


def _paying(schema: dict[str, Any]) -> tuple[Gate, list[Payment]]:
    paid: list[Payment] = []
    gate = Gate(PAY, store=MemoryStore(), key=TEST_KEY)

    def pay(payment: dict[str, Any] | None = None, batch: list[Any] = ()) -> str:  # type: ignore[assignment]
        paid.extend(Payment.model_validate(p) for p in [payment, *batch] if p is not None)
        return "paid"

    gate.register("pay", schema, pay)
    return gate, paid


PAYMENT = {
    "type": "object",
    "properties": {"to": {"type": "string"}, "amount": {"type": "integer", "default": 5000}},
    "required": ["to"],
}
PLACES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # where a default sits in the schema: (schema, arguments leaving it out, the path named)
    "properties": (
        {"type": "object", "properties": {"payment": PAYMENT}},
        {"payment": {"to": "mallory"}},
        "payment/amount",
    ),
    "$ref": (
        {
            "type": "object",
            "properties": {"payment": {"$ref": "#/$defs/Payment"}},
            "$defs": {"Payment": PAYMENT},
        },
        {"payment": {"to": "mallory"}},
        "payment/amount",
    ),
    "$ref to a default": (
        {
            "type": "object",
            "properties": {
                "payment": {
                    "type": "object",
                    "properties": {"to": {"type": "string"}, "amount": {"$ref": "#/$defs/A"}},
                }
            },
            "$defs": {"A": {"type": "integer", "default": 5000}},
        },
        {"payment": {"to": "mallory"}},
        "payment/amount",
    ),
    "$id": (
        {
            "$id": "https://example.invalid/pay",
            "type": "object",
            "properties": {"payment": {"$ref": "payment"}},
            "$defs": {"P": {"$id": "payment", **PAYMENT}},
        },
        {"payment": {"to": "mallory"}},
        "payment/amount",
    ),
    "anyOf": (
        {
            "type": "object",
            "properties": {"payment": {"anyOf": [PAYMENT, {"type": "string"}]}},
        },
        {"payment": {"to": "mallory"}},
        "payment/amount",
    ),
    "oneOf under allOf": (
        {
            "type": "object",
            "allOf": [{"properties": {"payment": {"oneOf": [{"type": "null"}, PAYMENT]}}}],
        },
        {"payment": {"to": "mallory"}},
        "payment/amount",
    ),
    "then": (
        {
            "type": "object",
            "properties": {"payment": {"type": "object"}},
            "if": {"required": ["payment"]},
            "then": {"properties": {"payment": PAYMENT}},
        },
        {"payment": {"to": "mallory"}},
        "payment/amount",
    ),
    "items": (
        {"type": "object", "properties": {"batch": {"type": "array", "items": PAYMENT}}},
        {"batch": [{"to": "bob", "amount": 5}, {"to": "mallory"}]},
        "batch/1/amount",
    ),
    "prefixItems": (
        {"type": "object", "properties": {"batch": {"type": "array", "prefixItems": [PAYMENT]}}},
        {"batch": [{"to": "mallory"}]},
        "batch/0/amount",
    ),
    "additionalProperties": (
        {
            "type": "object",
            "properties": {"payment": {"type": "object", "additionalProperties": PAYMENT}},
        },
        {"payment": {"x": {"to": "mallory"}}},
        "payment/x/amount",
    ),
    "a top-level default under a $ref": (
        {
            "type": "object",
            "properties": {"payment": {"$ref": "#/$defs/P"}},
            "$defs": {"P": {"type": "object", "default": {"to": "mallory", "amount": 5000}}},
        },
        {},
        "payment",
    ),
}


@pytest.mark.requirement("G7")
@pytest.mark.parametrize("place", PLACES)
def test_a_default_below_the_top_level_is_never_filled_behind_the_policys_back(place: str) -> None:
    """The policy caps the amounts it sees; an upstream that fills its schema's defaults
    would pay an `amount` left out at 5000. Wherever the default sits in the schema
    (under a branch too, whichever the upstream would take), the call is invalid,
    saying what to send, as it is for a pydantic model's field (test_tool_types)."""
    schema, args, path = PLACES[place]
    gate, paid = _paying(schema)
    refused = gate.call(BOT, "pay", args, Session("s"))
    assert isinstance(refused, Refusal)
    assert (refused.code, refused.detail) == (
        "invalid_arguments",
        f"{path}: missing (its default is not sent)",
    )
    assert paid == []


def test_a_default_that_is_sent_is_decided_and_a_null_default_is_no_default() -> None:
    gate, paid = _paying(PLACES["$ref"][0])
    session = Session("s")
    denied = gate.call(BOT, "pay", {"payment": {"to": "eve", "amount": 5000}}, session)
    assert isinstance(denied, Refusal)
    assert denied.code == "not_permitted"
    assert gate.call(BOT, "pay", {"payment": {"to": "bob", "amount": 50}}, session) == "paid"
    assert paid == [Payment(to="bob", amount=50)]
    nullable = {**PAYMENT, "properties": {**PAYMENT["properties"], "note": {"default": None}}}
    gate, paid = _paying({"type": "object", "properties": {"payment": nullable}})
    assert gate.call(BOT, "pay", {"payment": {"to": "bob", "amount": 5}}, session) == "paid"


def test_a_recursive_schema_is_walked_as_deep_as_the_arguments() -> None:
    tree = {
        "type": "object",
        "properties": {
            "children": {"type": "array", "items": {"$ref": "#"}},
            "amount": {"type": "integer", "default": 5000},
        },
        "allOf": [{"$ref": "#"}],
    }
    tool = make_tool("t", tree, lambda **_: None)
    assert tool.check({"amount": 1, "children": [{"amount": 2, "children": []}]}) is None
    assert tool.check({"amount": 1, "children": [{"amount": 2}, {}]}) == (
        "children/1/amount: missing (its default is not sent)"
    )


def test_a_schema_check_kept_for_one_schema_is_never_the_answer_for_another() -> None:
    # the meta-validation of a schema is kept by its JSON text; a tuple is written as
    # the list that would pass, so a schema with one is checked on its own every time
    listed = {"type": "object", "required": ["a"]}
    tupled = {"type": "object", "required": ("a",)}
    for _ in range(2):
        make_tool("t", listed, lambda **_: None)
        with pytest.raises(ToolDefinitionError, match="invalid JSON Schema"):
            make_tool("t", tupled, lambda **_: None)
        with pytest.raises(ToolDefinitionError, match="invalid JSON Schema"):
            make_tool("t", {"type": "object", "minProperties": -1}, lambda **_: None)
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}
    make_tool("t", {**draft4, "minimum": 1, "exclusiveMinimum": True}, lambda **_: None)
    with pytest.raises(ToolDefinitionError, match="invalid JSON Schema"):  # 2020-12: a number
        make_tool("t", {"type": "object", "minimum": 1, "exclusiveMinimum": True}, lambda **_: None)
