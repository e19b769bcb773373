"""What every adapter shares: the model's arguments in, one text per result out,
and imports that name the extra to install."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import subprocess
import sys
from typing import Any

import pydantic
import pytest

from warded import Refusal, ToolFailure
from warded.adapters.text import decode_arguments, is_error, model_text


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    tags: set[str]


class Account(pydantic.BaseModel):
    iban: str
    opened: datetime.date


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ("plain text, as it is", "plain text, as it is"),
        ("", ""),
        (42.5, "42.5"),
        (None, "null"),
        (True, "true"),
        ({"b": 1, "a": [1, 2]}, '{"b":1,"a":[1,2]}'),  # the result's own key order
        ({"é": "ü"}, '{"é":"ü"}'),
        ((1, 2), "[1,2]"),
        (Point(1, {"a"}), '{"x":1,"tags":["a"]}'),
        (Account(iban="G", opened=datetime.date(2026, 1, 2)), '{"iban":"G","opened":"2026-01-02"}'),
        (Colour.RED, '"red"'),
        (datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC), '"2026-01-02T03:04:05Z"'),
        (b"\xff\x00", '"_wA="'),  # URL-safe base64
        ([math.nan, math.inf], "[null,null]"),
        (2**70, "1180591620717411303424"),
        ({frozenset({1}): 1}, json.dumps(str({frozenset({1}): 1}))),
        (["\ud800"], json.dumps(str(["\ud800"]))),
    ],
)  # fmt: skip
def test_each_result_has_one_text(result: Any, text: str) -> None:
    assert model_text(result) == text


def test_an_object_pydantic_cannot_encode_becomes_its_str() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque #7"

    assert model_text({"o": Opaque()}) == '{"o":"opaque #7"}'


def test_refusals_and_failures_are_their_own_text_and_errors() -> None:
    refusal = Refusal("not_permitted", ref="r1", policy="p")
    failure = ToolFailure(ref="r2")
    assert model_text(refusal) == refusal.to_model()
    assert model_text(failure) == failure.to_model()
    assert is_error(refusal)
    assert is_error(failure)
    assert not is_error({"refused": True})  # a tool's own output is never a refusal


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        ("  \n", {}),
        ("[1]", [1]),
        ("{broken", "{broken"),
        ("[" * 100_000, "[" * 100_000),
        ('{"a": 1, "a": 2}', {"a": 2}),
    ],
)
def test_arguments_decode_or_stay_text_for_the_gate_to_refuse(text: str, value: Any) -> None:
    assert decode_arguments(text) == value


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("langchain", "langchain"),
        ("agents", "agents"),
    ],
)
def test_an_adapter_without_its_sdk_says_which_extra_to_install(module: str, extra: str) -> None:
    missing = {"openai": "openai", "anthropic": "anthropic", "langchain": "langchain_core",
               "agents": "agents"}[module]  # fmt: skip
    script = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        f"try:\n    import warded.adapters.{module}\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert f"pip install 'warded[{extra}]'" in out.stdout
