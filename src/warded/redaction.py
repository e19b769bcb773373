"""What of a call's arguments the audit log keeps: a redacted copy.

The full arguments are identified by their digest; the copy keeps what an
operator needs to read the story without storing secrets: parameters the tool
marks sensitive are masked, and long strings are cut.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from typing import Any, Protocol

MASK = "[redacted]"
MAX_STRING = 256


class Redactor(Protocol):
    def redact(self, sensitive: frozenset[str], value: Any) -> Any: ...


class DefaultRedactor:
    """Masks sensitive parameters (at any depth, by name) and cuts long strings."""

    def __init__(self, max_string: int = MAX_STRING) -> None:
        self.max_string = max_string

    def redact(self, sensitive: frozenset[str], value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: MASK if k in sensitive else self.redact(sensitive, v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.redact(sensitive, v) for v in value]
        if isinstance(value, str) and len(value) > self.max_string:
            return f"{value[: self.max_string]}…[+{len(value) - self.max_string} chars]"
        return value


def mask_by_name(sensitive: frozenset[str], value: Any) -> Any:
    """`value` with every sensitive parameter (at any depth, by name) masked, nothing cut:
    what an approver is shown."""
    if not sensitive:
        return value
    if isinstance(value, dict):
        return {k: MASK if k in sensitive else mask_by_name(sensitive, v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_by_name(sensitive, v) for v in value]
    return value


class Secrets:
    """The secret strings of one call, and the one step that masks them everywhere.

    A call's secrets are the values of its `sensitive` parameters (with the
    keys inside them) and the spans the input scanners found in its arguments,
    keys and values. Everything of the call
    that reaches the audit log, the approvals table, a log line or a terminal —
    the argument copy, engine diagnostics, error reasons, tool error messages —
    goes through `mask` (each secret as it is, and as JSON, `repr` and `ascii`
    escape it, for texts that quote it: a request, an exception's `{value!r}`).
    """

    __slots__ = ("_forms",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {f for s in secrets if s for f in _spellings(s)}
        self._forms = sorted((f for f in forms if len(f) >= MIN_SECRET), key=len, reverse=True)

    @classmethod
    def of_call(cls, sensitive: frozenset[str], value: Any, found: Iterable[str] = ()) -> Secrets:
        """The secrets of a call with arguments `value`: its sensitive parameters'
        values and the keys inside them (at any depth) and the texts `found` by input
        scanners."""
        into: set[str] = set(found)
        if sensitive:
            _collect(sensitive, value, into, inside=False)
        return cls(into)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def mask(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, MASK)
        return text

    def mask_all(self, texts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.mask(t) for t in texts) if self._forms else texts


MIN_SECRET = 3  # shorter values would mask ordinary words; they are masked by name instead


def _spellings(secret: str) -> tuple[str, ...]:
    """A secret as texts quoting it may spell it (the quotes left out)."""
    return (
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        _escape_debug(secret),
    )


_RUST_ESCAPES = {
    "\0": "\\0",
    "\t": "\\t",
    "\r": "\\r",
    "\n": "\\n",
    "\\": "\\\\",
    '"': '\\"',
    "'": "\\'",
}


def _escape_debug(text: str) -> str:
    """`text` as Rust's `str::escape_debug` spells it, as Cedar's errors quote the context:
    both quotes escaped, what is not printable (the same categories as Python's
    `isprintable`) as `\\u{hex}`, and so is a combining mark that starts the text."""
    out = []
    for i, ch in enumerate(text):
        if ch in _RUST_ESCAPES:
            out.append(_RUST_ESCAPES[ch])
        elif ch.isprintable() and not (i == 0 and unicodedata.category(ch) in ("Mn", "Me")):
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return "".join(out)


def _collect(sensitive: frozenset[str], value: Any, into: set[str], *, inside: bool) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if inside:  # a key inside a sensitive value is as secret as the value
                into.add(k)
            _collect(sensitive, v, into, inside=inside or k in sensitive)
    elif isinstance(value, list):
        for v in value:
            _collect(sensitive, v, into, inside=inside)
    elif inside and value is not None and not isinstance(value, bool):
        into.add(str(value))
