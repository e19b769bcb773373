"""OpenAI strict mode only where a tool's schema allows it, on schemas pydantic derived."""

from __future__ import annotations

import copy
import datetime
import enum
from typing import Any, Literal

import pydantic
import pytest
from agents.strict_schema import ensure_strict_json_schema
from openai.lib._pydantic import _ensure_strict_json_schema

from warded import Gate, MemoryStore, Principal, Session
from warded.adapters.strict import strict_parameters


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Closed(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    street: str
    number: int


class Open(pydantic.BaseModel):
    street: str


WHERE = pydantic.Field(description="where")  # a $ref with a sibling keyword


def simple(recipient: str, amount: float, subject: str) -> None: ...
def no_arguments() -> None: ...
def nullable_default(recipient: str, note: str | None = None) -> tuple[str, str | None]:
    return recipient, note


def nullable_required(note: str | None) -> None: ...
def literal_and_enum(mode: Literal["fast", "slow"], colour: Colour) -> None: ...
def bounded(tags: list[str], count: int = pydantic.Field(ge=1, le=10)) -> None: ...
def dated(when: datetime.datetime, day: datetime.date) -> None: ...
def nested_closed(address: Closed) -> None: ...
def with_default(limit: int = 10) -> None: ...
def string_length(name: str = pydantic.Field(min_length=1)) -> None: ...
def mapping(scores: dict[str, int]) -> None: ...
def unique(tags: set[str]) -> None: ...
def nested_open(address: Open) -> None: ...
def described_model(address: Closed = WHERE) -> None: ...
def link(url: pydantic.AnyUrl) -> None: ...
def pair(point: tuple[int, int]) -> None: ...


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    """A gate with every tool below registered through `gate.tool`, all of them permitted."""
    d = tmp_path_factory.mktemp("strict")
    (d / "p.cedar").write_text('@id("all") permit (principal, action, resource);')
    actions = "".join(
        f"action {fn.__name__} appliesTo {{ principal: [Agent], resource: [Tool], "
        "context: { args: {}, session: Session, now: Now } };\n"
        for fn in STRICT + NOT_STRICT
        if fn is not nullable_default
    )
    (d / "schema.cedarschema").write_text(
        "type Session = { id: String, labels: Set<String>, calls: Long };\n"
        "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
        "entity Agent; entity Tool;\n"
        + actions
        + "action nullable_default appliesTo { principal: [Agent], resource: [Tool], "
        "context: { args: { recipient: String, note?: String }, session: Session, now: Now } };\n"
    )
    g = Gate.from_directory(d, store=MemoryStore())
    for fn in STRICT + NOT_STRICT:
        g.tool(fn)
    return g


def _schema(gate: Gate, fn: Any) -> dict[str, Any]:
    """The schema the gate derived for `fn` (pydantic, through `gate.tool`)."""
    (spec,) = [s for s in gate.tools(Principal.agent("a"), Session("s")) if s.name == fn.__name__]
    return dict(spec.parameters)


STRICT = [
    simple,
    no_arguments,
    nullable_default,
    nullable_required,
    literal_and_enum,
    bounded,
    dated,
    nested_closed,
]
NOT_STRICT = [
    with_default,
    string_length,
    mapping,
    unique,
    nested_open,
    described_model,
    link,
    pair,
]


@pytest.mark.parametrize("fn", STRICT, ids=lambda f: f.__name__)
def test_schemas_inside_the_strict_subset_are_sent_strict(gate: Gate, fn: Any) -> None:
    schema = _schema(gate, fn)
    sent, strict = strict_parameters(schema)
    assert strict
    # The SDKs' own strict conversions have nothing left to change.
    assert _ensure_strict_json_schema(copy.deepcopy(sent), path=(), root=sent) == sent
    assert ensure_strict_json_schema(copy.deepcopy(sent)) == sent


@pytest.mark.parametrize("fn", NOT_STRICT, ids=lambda f: f.__name__)
def test_schemas_outside_the_strict_subset_are_sent_unchanged_and_not_strict(
    gate: Gate, fn: Any
) -> None:
    schema = _schema(gate, fn)
    sent, strict = strict_parameters(schema)
    assert not strict
    assert sent == schema


def test_a_simple_tool_is_sent_as_the_gate_derived_it(gate: Gate) -> None:
    schema = _schema(gate, simple)
    assert strict_parameters(schema) == (schema, True)
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["amount", "recipient", "subject"]


def test_an_optional_property_defaulting_to_null_becomes_required_and_nullable(gate: Gate) -> None:
    schema = _schema(gate, nullable_default)
    sent, strict = strict_parameters(schema)
    assert strict
    assert sorted(sent["required"]) == ["note", "recipient"]
    assert "default" not in sent["properties"]["note"]
    assert schema["required"] == ["recipient"]  # the gate's own schema is untouched
    assert schema["properties"]["note"]["default"] is None


def test_null_sent_for_a_null_default_reaches_the_tool_as_the_omitted_value(gate: Gate) -> None:
    """The rewrite keeps the meaning: `null` and omission give the gate the same arguments."""
    agent, session = Principal.agent("a"), Session("s")
    first = gate.call(agent, "nullable_default", {"recipient": "x", "note": None}, session)
    second = gate.call(agent, "nullable_default", {"recipient": "x"}, session)
    assert first == second == ("x", None)
    decided = [r.body for r in gate.store.records() if r.body["kind"] == "decision"]
    assert decided[-2]["args_digest"] == decided[-1]["args_digest"]


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, "open"),
        (
            {"type": "object", "properties": {"a": {"type": "string", "format": "uri"}},
             "required": ["a"], "additionalProperties": False},
            "format outside the supported list",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
             "additionalProperties": False, "allOf": [{"required": ["a"]}]},
            "allOf",
        ),
        (
            {"anyOf": [{"type": "object", "properties": {}, "additionalProperties": False}]},
            "root that is not an object",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}},
             "required": ["a"], "additionalProperties": False},
            "remote $ref",
        ),
        (
            {"type": "object", "required": ["a"], "additionalProperties": False,
             "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}},
            "items as a list",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "integer", "default": 3}},
             "required": ["a"], "additionalProperties": False},
            "a non-null default",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "object", "$defs": {}}},
             "required": ["a"], "additionalProperties": False},
            "$defs below the root",
        ),
    ],
)  # fmt: skip
def test_hand_written_schemas_outside_the_subset_are_not_strict(
    schema: dict[str, Any], why: str
) -> None:
    assert strict_parameters(schema) == (schema, False), why


def test_the_schema_sent_is_a_copy_the_caller_may_change(gate: Gate) -> None:
    schema = _schema(gate, nested_closed)
    before = copy.deepcopy(schema)
    sent, _ = strict_parameters(schema)
    sent["properties"].clear()
    sent["$defs"]["Closed"]["required"].append("x")
    assert schema == before
