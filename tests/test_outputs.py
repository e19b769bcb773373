"""The canonical JSON view of tool results, and masking back into the result's own type."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import io
import uuid
from collections import OrderedDict
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import attrs
import pytest
from pydantic import BaseModel, computed_field

from warded.errors import ViewError
from warded.outputs import MAX_DEPTH, masked, view
from warded.scanners import Finding, scan_value

SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


class WordScanner:
    """Finds one fixed word (a stand-in for the built-ins, which need the scan extra)."""

    name = "secrets"

    def __init__(self, word: str = SECRET) -> None:
        self.word = word

    def scan(self, text: str) -> list[Finding]:
        out = []
        i = text.find(self.word)
        while i != -1:
            out.append(Finding(self.name, "token", "", i, i + len(self.word), 1.0))
            i = text.find(self.word, i + 1)
        return out


def _mask(result: Any) -> Any:
    return masked(result, scan_value([WordScanner()], view(result)))


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Mail(BaseModel):
    sender: str
    body: str
    sent: dt.datetime
    tags: set[str] = set()


class Inbox(BaseModel):
    owner: str
    mails: list[Mail]


@dataclasses.dataclass(frozen=True)
class Note:
    title: str
    text: str
    colour: Colour = Colour.RED


@attrs.define
class Ticket:
    id: int
    summary: str
    _internal: str = "x"


class Pair(NamedTuple):
    left: str
    right: str


SENT = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)


def test_plain_json_is_its_own_view() -> None:
    value = {"a": [1, 2.5, True, None, "x"], "b": {"c": "d"}}
    assert view(value) == value


def test_pydantic_models_are_viewed_through_their_json_dump() -> None:
    inbox = Inbox(owner="emma", mails=[Mail(sender="a@b.c", body="hi", sent=SENT, tags={"x"})])
    assert view(inbox) == {
        "owner": "emma",
        "mails": [{"sender": "a@b.c", "body": "hi", "sent": "2024-05-01T09:30:00Z", "tags": ["x"]}],
    }


def test_dataclasses_attrs_enums_tuples_sets_and_bytes_have_views() -> None:
    value = {
        "note": Note("t", "body"),
        "ticket": Ticket(7, "broken"),
        "level": Level.HIGH,
        "pair": Pair("l", "r"),
        "set": frozenset({"b", "a"}),
        "raw": b"caf\xc3\xa9 \xff",
        "when": dt.date(2024, 1, 2),
        "id": uuid.UUID(int=1),
        "amount": Decimal("1.50"),
        "path": PurePosixPath("/tmp/x"),
        3: "int key",
        Colour.RED: "enum key",
    }
    assert view(value) == {
        "note": {"title": "t", "text": "body", "colour": "red"},
        "ticket": {"id": 7, "summary": "broken", "_internal": "x"},
        "level": 3,
        "pair": ["l", "r"],
        "set": ["a", "b"],
        "raw": "café \ufffd",
        "when": "2024-01-02",
        "id": "00000000-0000-0000-0000-000000000001",
        "amount": "1.50",
        "path": "/tmp/x",
        "3": "int key",
        "red": "enum key",
    }


def test_a_type_can_say_what_it_looks_like() -> None:
    class Document:
        def __init__(self, text: str) -> None:
            self.text = text

        def __warded_view__(self) -> Any:
            return {"text": self.text}

    assert view([Document("hello")]) == [{"text": "hello"}]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (io.StringIO("x"), "StringIO"),
        ((i for i in range(3)), "generator"),
        ({"handler": print}, "handler"),
        ({(1, 2): "tuple key"}, "key"),
        ({1: "a", "1": "b"}, "same JSON name"),
        (object(), "object"),
    ],
)
def test_a_result_without_a_view_is_an_error_naming_what_and_where(value: Any, needle: str) -> None:
    with pytest.raises(ViewError, match=needle):
        view(value)


def test_cycles_and_excessive_depth_are_errors() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ViewError, match="refers to itself"):
        view(loop)
    deep: Any = "x"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ViewError, match="deeper"):
        view(deep)


def test_a_secret_in_a_pydantic_model_is_masked_in_the_same_type() -> None:
    inbox = Inbox(
        owner="emma",
        mails=[
            Mail(sender="a@b.c", body="nothing here", sent=SENT),
            Mail(sender="x@y.z", body=f"token {SECRET} inside", sent=SENT, tags={SECRET, "ok"}),
        ],
    )
    out = _mask(inbox)
    assert type(out) is Inbox
    assert type(out.mails[1]) is Mail
    assert out.mails[1].body == "token [redacted:token] inside"
    assert out.mails[1].tags == {"[redacted:token]", "ok"}
    assert out.mails[1].sent == SENT
    assert out.mails[0] is inbox.mails[0]  # untouched parts are not copied
    assert SECRET in inbox.mails[1].body  # the original is not modified
    assert SECRET not in repr(out)


def test_dataclasses_attrs_named_tuples_bytes_and_mappings_keep_their_type() -> None:
    value = (
        Note("t", f"see {SECRET}"),
        Ticket(1, SECRET),
        Pair(SECRET, "r"),
        SECRET.encode(),
        bytearray(SECRET.encode()),
        OrderedDict(k=SECRET),
    )
    out = _mask(value)
    assert [type(v) for v in out] == [type(v) for v in value]
    assert out[0].text == "see [redacted:token]"
    assert out[1].summary == "[redacted:token]"
    assert out[2] == Pair("[redacted:token]", "r")
    assert out[3] == b"[redacted:token]"
    assert out[5] == OrderedDict(k="[redacted:token]")


def test_nothing_found_returns_the_result_itself() -> None:
    inbox = Inbox(owner="emma", mails=[])
    assert _mask(inbox) is inbox


def test_a_type_that_cannot_be_rebuilt_gives_the_masked_view() -> None:
    class Document:
        def __init__(self, text: str) -> None:
            self.text = text

        def __warded_view__(self) -> Any:
            return {"text": self.text}

    out = _mask(Document(f"key {SECRET}"))
    assert out == {"text": "key [redacted:token]"}


def test_a_type_with_a_way_back_is_rebuilt_from_the_masked_view() -> None:
    class Document:
        def __init__(self, text: str) -> None:
            self.text = text

        def __warded_view__(self) -> Any:
            return {"text": self.text}

        @classmethod
        def __warded_from_view__(cls, seen: Any) -> Any:
            return cls(seen["text"])

    out = _mask(Document(f"key {SECRET}"))
    assert type(out) is Document
    assert out.text == "key [redacted:token]"


def test_a_secret_only_in_a_computed_field_falls_back_to_the_masked_view() -> None:
    class Wrapped(BaseModel):
        half: str

        @computed_field  # type: ignore[prop-decorator]
        @property
        def whole(self) -> str:
            return self.half + self.half

    token = SECRET[:20]
    result = Wrapped(half=token)
    out = masked(result, scan_value([WordScanner(token * 2)], view(result)))
    assert out == {"half": token, "whole": "[redacted:token]"}


def test_a_masked_enum_or_date_becomes_its_masked_string() -> None:
    class Secretive(enum.Enum):
        KEY = SECRET

    out = _mask(Note("t", "x", Secretive.KEY))  # type: ignore[arg-type]
    assert isinstance(out, Note)
    assert out.colour == "[redacted:token]"


class Headers(BaseModel):
    values: dict[str, str]


def test_a_secret_key_is_masked_in_a_rebuilt_mapping_of_the_same_type() -> None:
    value = OrderedDict([(SECRET, "v"), (f"x {SECRET}", {SECRET: 1}), ("ok", SECRET)])
    out = _mask(value)
    assert type(out) is OrderedDict
    assert list(out.items()) == [
        ("[redacted:token]", "v"),
        ("x [redacted:token]", {"[redacted:token]": 1}),
        ("ok", "[redacted:token]"),
    ]
    assert SECRET in value  # the original is not modified


def test_a_secret_key_inside_a_model_is_masked_and_the_model_kept() -> None:
    result = Headers(values={SECRET: "a", "[redacted:token]": "b", "plain": "c"})
    out = _mask(result)
    assert type(out) is Headers
    assert out.values == {"[redacted:token]#2": "a", "[redacted:token]": "b", "plain": "c"}
    assert SECRET not in repr(out)


def test_a_masked_field_name_gives_the_masked_view() -> None:
    class Document:
        def __init__(self, body: str) -> None:
            self.body = body

        def __warded_view__(self) -> Any:
            return {self.body: "x"}  # a key from the content

    out = _mask(Document(SECRET))
    assert out == {"[redacted:token]": "x"}
    assert _mask(Ticket(1, "s")) == Ticket(1, "s")
    out = masked(Note("t", "x"), scan_value([WordScanner("title")], view(Note("t", "x"))))
    assert out == {"[redacted:token]": "t", "text": "x", "colour": "red"}


def test_a_key_with_a_non_string_type_keeps_its_type_when_not_masked() -> None:
    out = _mask({1: "x", SECRET: 2, None: SECRET})
    assert out == {1: "x", "[redacted:token]": 2, None: "[redacted:token]"}


def test_the_value_of_a_masked_key_is_kept_as_it_was() -> None:
    note = Note("t", "x")
    out = _mask({SECRET: Colour.RED, f"{SECRET}!": note, "k": {SECRET: [1]}})
    assert out == {
        "[redacted:token]": Colour.RED,
        "[redacted:token]!": note,
        "k": {"[redacted:token]": [1]},
    }
    assert out["[redacted:token]!"] is note  # not rebuilt: nothing in it was masked
