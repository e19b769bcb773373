"""Source locations for Cedar text, which cedarpy's errors do not carry.

`statements` splits policy text into top-level statements with the line each
starts on (a small lexer that knows comments and string literals).
`error_line` finds the line a parse error is on: the first line whose prefix
fails with an error other than running out of input. `max_depth` is the
deepest bracket nesting outside comments and strings, checked before any text
reaches Cedar's recursive parsers.
"""

from __future__ import annotations

from collections.abc import Callable


def statements(text: str) -> list[tuple[int, str]]:
    """Top-level `;`-terminated statements as (first line, text), comments skipped."""
    out: list[tuple[int, str]] = []
    start: int | None = None
    line = 1
    i, n = 0, len(text)
    begin = 0
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c == '"':
            if start is None:
                start = line
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif c == ";":
            if start is not None:
                out.append((start, text[begin : i + 1]))
            start = None
            begin = i + 1
        elif not c.isspace() and start is None:
            start = line
            begin = i
        i += 1
    if start is not None:
        out.append((start, text[begin:]))
    return out


def error_line(text: str, parse: Callable[[str], object]) -> int | None:
    """The 1-based line where `parse(text)` first fails, or None if unknown."""
    lines = text.rstrip().split("\n")
    for k in range(1, len(lines) + 1):
        prefix = "\n".join(lines[:k])
        try:
            parse(prefix)
        except ValueError as exc:
            if "end of input" not in str(exc) and "unexpected end" not in str(exc):
                return k
        except Exception:
            return k
    return len(lines) if lines else None


def max_depth(text: str) -> int:
    """The deepest nesting of (), [] and {} outside comments and string literals."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")]}":
            depth = max(0, depth - 1)
        i += 1
    return deepest
