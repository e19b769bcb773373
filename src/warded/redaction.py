"""What of a call's arguments the audit log keeps: a redacted copy.

The full arguments are identified by their digest; the copy keeps what an
operator needs to read the story without storing secrets: parameters the tool
marks sensitive are masked, and long strings are cut.
"""

from __future__ import annotations

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
