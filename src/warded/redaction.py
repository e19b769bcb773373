"""What of a call's arguments the audit log keeps: a redacted copy.

The full arguments are identified by their digest; the copy keeps what an
operator needs to read the story without storing secrets: parameters the tool
marks sensitive are masked, and long strings are cut.
"""

from __future__ import annotations

import json
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


def scrub(texts: tuple[str, ...], sensitive: frozenset[str], value: Any) -> tuple[str, ...]:
    """`texts` (error messages, reasons) with every sensitive argument value masked.

    Engine diagnostics and exception messages can quote the request they
    failed on; what the audit log keeps of them must not reveal what the
    redacted copy of the arguments hides.
    """
    if not sensitive or not texts:
        return texts
    secrets: set[str] = set()
    _collect(sensitive, value, secrets, inside=False)
    return mask_strings(texts, secrets)


def mask_strings(texts: tuple[str, ...], secrets: set[str]) -> tuple[str, ...]:
    """`texts` with every occurrence of each secret (and its JSON-escaped forms) masked."""
    if not secrets or not texts:
        return texts
    forms = sorted(
        {f for s in secrets for f in (s, json.dumps(s), json.dumps(s)[1:-1]) if len(f) >= 3},
        key=len,
        reverse=True,
    )
    out = []
    for text in texts:
        for form in forms:
            text = text.replace(form, MASK)
        out.append(text)
    return tuple(out)


def _collect(sensitive: frozenset[str], value: Any, into: set[str], *, inside: bool) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect(sensitive, v, into, inside=inside or k in sensitive)
    elif isinstance(value, list):
        for v in value:
            _collect(sensitive, v, into, inside=inside)
    elif inside and value is not None and not isinstance(value, bool):
        into.add(str(value))
