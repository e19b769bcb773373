"""The canonical JSON view of a tool result, and the way back after masking.

Scanners, labels, redaction and provenance read one thing: the result's
*view*, a value made only of dicts with string keys, lists, strings, numbers,
booleans and None. `view(result)` builds it:

| result | view |
|---|---|
| str, int, float, bool, None | itself (a str subclass as a plain str) |
| an enum member | the view of its value |
| bytes, bytearray, memoryview | the bytes decoded as UTF-8, bad bytes as U+FFFD |
| an object with `__warded_view__()` | the view of what that returns |
| a pydantic model | `model_dump(mode="json")` |
| a dataclass or attrs instance | a dict of its fields by name |
| a mapping | a dict; keys that are str, int, float, bool, None or enums become strings |
| a list, tuple (named or not), other sequence | a list |
| a set or frozenset | a list, sorted by each item's canonical JSON |
| datetime, date, time | ISO 8601 (`isoformat()`) |
| UUID, Decimal, a path | `str()` |

Anything else — an open file, a generator, a socket, a class, a cycle, nesting
deeper than `MAX_DEPTH` — raises `ViewError` saying what and where: the gate
cannot look at it, so it does not pass it on (unless the tool is registered
as returning opaque data).

`masked(result, findings)` is what the model receives after masking: the
result with every finding's span masked, rebuilt in the result's own type
where that type can be rebuilt (dicts, lists, tuples, named tuples, sets,
bytes, pydantic models via `model_copy`, dataclasses via `replace`, attrs
classes via `evolve`, a type with `__warded_from_view__(view)`); the rebuilt
value is accepted only if its view is the masked view (up to the order of
list items, which pydantic gives sets in iteration order). Otherwise the
masked view itself is returned: never a value that still holds what was
masked. A masked enum, datetime, UUID or other scalar becomes its masked
string. A key with a finding becomes its masked key (as `redact` in
`warded.scanners.base` masks it) in a rebuilt dict or other mapping; a type
whose keys are its fields (a model, a dataclass, an attrs class) cannot rename
one, so its masked view is returned instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from collections.abc import Mapping, Sequence, Set
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from warded.errors import ViewError
from warded.scanners.base import KEY, MASK, Finding, redact

MAX_DEPTH = 64
_TEXTUAL = (dt.datetime, dt.date, dt.time, uuid.UUID, Decimal, PurePath)
_LEAVES = (enum.Enum, str, int, float, bool, type(None), *_TEXTUAL)


@runtime_checkable
class Viewable(Protocol):
    """A type that says what it looks like as JSON (and, optionally, how to come back).

    `__warded_view__()` returns a JSON-like value (it is viewed in turn). A
    type that also has a classmethod `__warded_from_view__(view)` is rebuilt
    from a masked view; without it, a masked instance is replaced by its
    masked view.
    """

    def __warded_view__(self) -> Any: ...


def view(result: Any) -> Any:
    """The canonical JSON view of `result` (module docstring); ViewError if it has none."""
    return _view(result, "", set())


def masked(result: Any, findings: Sequence[Finding], mask: str = MASK) -> Any:
    """`result` with the findings (paths into its view) masked, in its own type where possible.

    Returns `result` itself when no finding changes anything; the masked
    view when the type cannot be rebuilt to show exactly the masked view.
    """
    seen = view(result)
    hidden = redact(seen, findings, mask)
    if hidden == seen:
        return result
    tree: dict[str, Any] = {}
    for f in findings:
        node = tree
        for part in _parts(f.path):
            node = node.setdefault(part, {})
    try:
        rebuilt = _rebuild(result, seen, hidden, tree)
        again = view(rebuilt)
        if again == hidden or _unordered(again) == _unordered(hidden):
            return rebuilt
    except Exception:
        pass
    return hidden


def _view(value: Any, where: str, active: set[int]) -> Any:
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        return value
    if isinstance(value, enum.Enum):
        return _view(value.value, where, active)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, _TEXTUAL):
        return value.isoformat() if isinstance(value, dt.date | dt.time) else str(value)
    if len(active) >= MAX_DEPTH:
        raise ViewError(f"result nested deeper than {MAX_DEPTH} levels at {where or '/'}")
    if id(value) in active:
        raise ViewError(f"result refers to itself at {where or '/'}")
    active.add(id(value))
    try:
        return _container(value, where, active)
    finally:
        active.discard(id(value))


def _container(value: Any, where: str, active: set[int]) -> Any:
    hook = getattr(type(value), "__warded_view__", None)
    if hook is not None:
        return _view(hook(value), where, active)
    if isinstance(value, BaseModel):
        try:
            dumped = value.model_dump(mode="json", warnings=False)
        except Exception as exc:
            raise ViewError(f"{_name(value)} at {where or '/'}: {exc}") from None
        return _view(dumped, where, active)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _view(getattr(value, f.name), _join(where, f.name), active)
            for f in dataclasses.fields(value)
        }
    attributes = getattr(type(value), "__attrs_attrs__", None)
    if attributes is not None and not isinstance(value, type):
        return {
            a.name: _view(getattr(value, a.name), _join(where, a.name), active) for a in attributes
        }
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = _key(k, where)
            if key in out:
                raise ViewError(f"two keys at {where or '/'} have the same JSON name {key!r}")
            out[key] = _view(v, _join(where, key), active)
        return out
    if isinstance(value, Set):
        items = [_view(v, _join(where, "*"), active) for v in value]
        return sorted(items, key=_order)
    if isinstance(value, Sequence):
        return [_view(v, _join(where, str(i)), active) for i, v in enumerate(value)]
    raise ViewError(f"a {_name(value)} at {where or '/'} has no JSON view")


def _key(key: Any, where: str) -> str:
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    raise ViewError(f"a {_name(key)} key at {where or '/'} has no JSON view")


def _order(item: Any) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False)


def _rebuild(original: Any, seen: Any, hidden: Any, tree: dict[str, Any]) -> Any:
    """`original` with the parts under `tree` replaced from `hidden`, its masked view (`seen`)."""
    if isinstance(original, _LEAVES):
        return hidden
    if isinstance(original, bytes | bytearray | memoryview):
        data = hidden.encode("utf-8")
        return bytearray(data) if isinstance(original, bytearray) else data
    if getattr(type(original), "__warded_view__", None) is not None:
        return type(original).__warded_from_view__(hidden)

    # each key of the view -> the key it became (masked where it had a finding)
    became = dict(zip(seen, hidden, strict=True)) if isinstance(seen, dict) else {}

    def changed(get: Any) -> dict[Any, Any]:
        return {k: _rebuild(get(k), seen[k], hidden[became[k]], sub) for k, sub in tree.items()}

    if any(k != new for k, new in became.items()) and not isinstance(original, Mapping):
        raise TypeError("masked a field's name")
    if isinstance(original, BaseModel):
        if not set(tree) <= set(type(original).model_fields):
            raise TypeError("masked a computed field")
        return original.model_copy(update=changed(lambda k: getattr(original, k)))
    if dataclasses.is_dataclass(original) and not isinstance(original, type):
        return dataclasses.replace(original, **changed(lambda k: getattr(original, k)))
    if getattr(type(original), "__attrs_attrs__", None) is not None:
        import attrs

        return attrs.evolve(original, **changed(lambda k: getattr(original, k)))
    if isinstance(original, Mapping):
        keys = {_key(k, ""): k for k in original}
        new = changed(lambda k: original[keys[k]])
        items = {
            (k if became[s] == s else became[s]): new.get(s, v)
            for s, (k, v) in zip(keys, original.items(), strict=True)
        }
        return items if type(original) is dict else _same(original, items)
    if isinstance(original, Set):
        # Pair members with their views by content: pydantic dumps sets in iteration order.
        members: dict[str, list[Any]] = {}
        for v in original:
            members.setdefault(_order(view(v)), []).append(v)
        out = []
        for i, item in enumerate(seen):
            v = members[_order(item)].pop()
            sub = tree.get(str(i))
            out.append(v if sub is None else _rebuild(v, item, hidden[i], sub))
        return _same(original, out)
    if isinstance(original, Sequence):
        values = list(original)
        for k, sub in tree.items():
            i = int(k)
            values[i] = _rebuild(values[i], seen[i], hidden[i], sub)
        if type(original) is list:
            return values
        if isinstance(original, tuple) and hasattr(original, "_fields"):
            return type(original)(*values)
        return _same(original, values)
    raise TypeError(f"cannot rebuild a {_name(original)}")


def _unordered(value: Any) -> Any:
    """`value` with every list sorted: views equal up to the order of items (sets' order)."""
    if isinstance(value, dict):
        return {k: _unordered(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_unordered(v) for v in value), key=_order)
    return value


def _same(original: Any, content: Any) -> Any:
    try:
        return type(original)(content)
    except Exception:
        return content


def _parts(path: str) -> list[str]:
    """The keys and indexes on the way to the string a finding is in, or for a key's
    own path, to the mapping that holds the key (rebuilt with the key renamed)."""
    parts = path.split("/") if path else []
    if parts[-1:] == [KEY]:
        parts = parts[:-2]
    return [p.replace("~1", "/").replace("~0", "~") for p in parts]


def _join(where: str, key: str) -> str:
    key = key.replace("~", "~0").replace("/", "~1")
    return f"{where}/{key}" if where else key


def _name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
