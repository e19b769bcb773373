"""Tools whose parameters are pydantic models, enums and dates (issue 8, item 15).

The schema the policy sees is derived from those types, and the function
receives instances validated from exactly the frozen values the policy saw. A
value pydantic refuses is `invalid_arguments` before any decision, with a
detail that names where and what, never the value.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel, Field, computed_field, field_validator

from support import TEST_KEY
from tiny import tiny
from warded import Gate, MemoryStore, Principal, Refusal, Session
from warded.canonical import args_digest, canonical_json

BOT = Principal.agent("bot")


class Color(StrEnum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    zip: str = Field(pattern=r"^\d{5}$")


class Order(BaseModel):
    item: str
    qty: int = Field(ge=1)

    @field_validator("item")
    @classmethod
    def no_fireworks(cls, value: str) -> str:
        if "firework" in value:
            raise ValueError(f"we do not ship {value!r}")  # quotes the value
        return value


BUNDLE = tiny(
    {
        "ship": "{ order: { item: String, qty: Long }, color: String, on: String, "
        "at: String, to?: { street: String, zip: String } }"
    },
    '@id("ship")\npermit (principal, action, resource);\n',
)


@pytest.fixture
def shipped() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def gate(shipped: list[dict[str, Any]]) -> Gate:
    gate = Gate(BUNDLE, store=MemoryStore(), key=TEST_KEY)

    @gate.tool
    def ship(
        order: Order, color: Color, on: dt.date, at: dt.datetime, to: Address | None = None
    ) -> str:
        shipped.append({"order": order, "color": color, "on": on, "at": at, "to": to})
        return "shipped"

    return gate


GOOD = {
    "order": {"item": "lamp", "qty": 2},
    "color": "red",
    "on": "2026-01-02",
    "at": "2026-01-02T10:30:00+01:00",
    "to": {"street": "1 Main St", "zip": "12345"},
}


def decisions(gate: Gate) -> list[dict[str, Any]]:
    return [r.body for r in gate.store.records() if r.body["kind"] == "decision"]


@pytest.mark.requirement("G7")
def test_the_tool_receives_instances_of_its_parameter_types(
    gate: Gate, shipped: list[dict[str, Any]]
) -> None:
    assert gate.call(BOT, "ship", GOOD, Session("s")) == "shipped"

    (got,) = shipped
    assert got["order"] == Order(item="lamp", qty=2)
    assert got["color"] is Color.RED
    assert got["on"] == dt.date(2026, 1, 2)
    assert got["at"] == dt.datetime(2026, 1, 2, 9, 30, tzinfo=dt.UTC)
    assert got["at"].utcoffset() == dt.timedelta(hours=1)
    assert got["to"] == Address(street="1 Main St", zip="12345")


@pytest.mark.requirement("G7")
@pytest.mark.parametrize(
    "args",
    [
        GOOD,
        {**GOOD, "to": None},
        {k: v for k, v in GOOD.items() if k != "to"},
        {**GOOD, "order": {"item": "ünïcode \u2028", "qty": 9007199254740991}},
        {**GOOD, "at": "2026-01-02T10:30:00Z", "color": "green"},
    ],
    ids=["full", "null address", "no address", "edges", "utc"],
)
def test_what_the_tool_receives_is_exactly_what_was_frozen_checked_and_digested(
    gate: Gate, shipped: list[dict[str, Any]], args: dict[str, Any]
) -> None:
    assert gate.call(BOT, "ship", args, Session("s")) == "shipped"

    (decision,) = decisions(gate)
    frozen = {"to": None, **args}  # the default is filled in before freezing
    assert decision["args"] == frozen
    assert decision["args_digest"] == args_digest(canonical_json(frozen), TEST_KEY)
    (got,) = shipped
    received = {
        "order": got["order"].model_dump(mode="json"),
        "color": got["color"].value,
        "on": got["on"].isoformat(),
        "at": args["at"] if got["at"] == dt.datetime.fromisoformat(args["at"]) else None,
        "to": None if got["to"] is None else got["to"].model_dump(mode="json"),
    }
    assert received == frozen


@pytest.mark.requirement("G16")
@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"on": "2026-13-45"}, "on: violates 'date_from_datetime_parsing'"),
        ({"at": "yesterday at noon"}, "at: violates 'datetime_from_date_parsing'"),
        ({"order": {"item": "firework XYZZY", "qty": 1}}, "order/item: violates 'value_error'"),
        ({"color": "purple"}, "color: violates 'enum'"),
        ({"order": {"item": "lamp", "qty": 0}}, "order/qty: violates 'minimum'"),
        ({"to": {"street": "x", "zip": "1234X"}}, "to/zip: violates 'pattern'"),
        ({"order": {"item": "lamp", "qty": "2"}}, "order/qty: violates 'type'"),
    ],
)
def test_a_value_the_types_refuse_is_invalid_arguments_before_any_decision_without_echoing_it(
    gate: Gate, shipped: list[dict[str, Any]], change: dict[str, Any], detail: str
) -> None:
    answer = gate.call(BOT, "ship", {**GOOD, **change}, Session("s"))

    assert isinstance(answer, Refusal)
    assert (answer.code, answer.detail) == ("invalid_arguments", detail)
    assert shipped == []
    (decision,) = decisions(gate)
    assert (decision["code"], decision["policies"], decision["request"]) == (
        "invalid_arguments",
        [],
        None,  # the engine never saw it
    )
    for bad in ("2026-13-45", "yesterday", "XYZZY", "purple", "1234X"):
        assert bad not in answer.to_model()
        assert bad not in " ".join(decision["reasons"])


class Payment(BaseModel):
    to: str
    amount: int = 5000  # a default inside a model: the policy sees only what was sent
    note: str | None = None  # left out or null, the policy sees it absent either way

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:  # derived, never sent
        return f"to {self.to}"


PAYMENTS = tiny(
    {"pay": "{ p: { to: String, amount?: Long }, batch?: Set<{ to: String, amount?: Long }> }"},
    '@id("pay")\npermit (principal, action, resource);\n'
    '@id("cap")\nforbid (principal, action, resource)\n'
    "when { context.args.p has amount && context.args.p.amount > 1000 };\n",
)


@pytest.mark.requirement("G7")
def test_a_default_inside_a_model_is_never_filled_behind_the_policys_back() -> None:
    """The policy caps amounts it can see; `amount` left out would reach the tool as
    5000. The call is invalid (saying what to send), never decided without it."""
    paid: list[Payment] = []
    gate = Gate(PAYMENTS, store=MemoryStore(), key=TEST_KEY)

    @gate.tool
    def pay(p: Payment, batch: list[Payment] | None = None) -> str:
        paid.extend([p, *(batch or [])])
        return "paid"

    session = Session("s")
    left_out = gate.call(BOT, "pay", {"p": {"to": "mallory"}}, session)
    assert isinstance(left_out, Refusal)
    assert (left_out.code, left_out.detail) == (
        "invalid_arguments",
        "p/amount: missing (its default is not sent)",
    )
    in_a_list = {
        "p": {"to": "bob", "amount": 5},
        "batch": [{"to": "bob", "amount": 5}, {"to": "eve"}],
    }
    refused = gate.call(BOT, "pay", in_a_list, session)
    assert isinstance(refused, Refusal)
    assert refused.detail == "batch/1/amount: missing (its default is not sent)"
    assert isinstance(gate.call(BOT, "pay", {"p": {"to": "eve", "amount": 5000}}, session), Refusal)
    assert gate.call(BOT, "pay", {"p": {"to": "bob", "amount": 50}}, session) == "paid"
    assert paid == [Payment(to="bob", amount=50)]
