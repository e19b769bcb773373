"""Necessary conditions for a pattern to match, cheaper to test than searching for it.

The scanners use these to skip a regular expression that cannot match, so
what they find is exactly what the full search finds:

* `min_run(pattern, chars)` is a length `n` such that every match of
  `pattern` in an ASCII text holds `n` consecutive characters from `chars`
  (`chars` must hold both cases of each letter in it). It is read off the
  parsed pattern and errs low: a part it cannot account for ends a run;
* `Runs(text, run_table(chars)).at_least(n)` says whether an ASCII text
  holds a run of `n` such characters, from one translation of the text
  (made when first asked) and a substring test per `n`.

So when `Runs(text, run_table(chars)).at_least(min_run(pattern, chars))` is
false for an ASCII `text`, `pattern` has no match in it.
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

_ASCII = [chr(c) for c in range(128)]
_CATEGORIES: dict[Any, frozenset[str]] = {
    sre.CATEGORY_DIGIT: frozenset("0123456789"),
    sre.CATEGORY_WORD: frozenset(ch for ch in _ASCII if ch.isalnum() or ch == "_"),
}


def min_run(pattern: re.Pattern[str], chars: frozenset[str]) -> int:
    """Consecutive characters from `chars` every match of `pattern` in ASCII text holds."""
    if not all(ch.swapcase() in chars for ch in chars):
        raise ValueError("chars must hold both cases of each letter")
    return _sequence(_parser.parse(pattern.pattern, pattern.flags), chars)[2]


def _sequence(items: Any, chars: frozenset[str]) -> tuple[bool, int, int]:
    """(only `chars` consumed, least characters consumed, longest guaranteed run)."""
    only, least, run, best = True, 0, 0, 0
    for op, av in items:
        inner_only, inner_least, inner_best = _item(op, av, chars)
        least += inner_least
        if inner_only:
            run += inner_least
        else:
            only, run = False, 0
        best = max(best, run, inner_best)
    return only, least, best


def _item(op: Any, av: Any, chars: frozenset[str]) -> tuple[bool, int, int]:
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):  # zero-width: consumes nothing
        return True, 0, 0
    if op is sre.LITERAL:
        inside = chr(av) in chars
        return inside, 1, int(inside)
    if op is sre.IN:
        inside = _class_inside(av, chars)
        return inside, 1, int(inside)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, _, sub = av
        only, least, best = _sequence(sub, chars)
        return only, low * least, best if low >= 1 else 0
    if op is sre.SUBPATTERN:
        return _sequence(av[-1], chars)
    if op is sre.ATOMIC_GROUP:
        return _sequence(av, chars)
    if op is sre.BRANCH:
        branches = [_sequence(b, chars) for b in av[1]]
        return (
            all(b[0] for b in branches),
            min(b[1] for b in branches),
            min(b[2] for b in branches),
        )
    return False, 0, 0  # any character, a back reference, a conditional: nothing known


def _class_inside(items: Any, chars: frozenset[str]) -> bool:
    """Whether every ASCII character the class matches is in `chars`."""
    members: set[str] = set()
    for op, av in items:
        if op is sre.NEGATE:
            return False
        if op is sre.LITERAL:
            members.add(chr(av))
        elif op is sre.RANGE:
            members.update(chr(c) for c in range(av[0], min(av[1], 127) + 1))
        elif op is sre.CATEGORY and av in _CATEGORIES:
            members |= _CATEGORIES[av]
        else:
            return False
    ascii_members = {ch for ch in members if ch.isascii()}
    return bool(ascii_members) and ascii_members <= chars


def run_table(chars: frozenset[str]) -> dict[int, str]:
    """The translation that `Runs` applies: "a" for a character of `chars`, " " otherwise."""
    return {ord(ch): "a" if ch in chars else " " for ch in _ASCII}


class Runs:
    """Whether an ASCII text holds a run of `n` characters from `table`'s set, by `n`."""

    def __init__(self, text: str, table: dict[int, str]) -> None:
        self.text, self.table = text, table
        self.hay = ""
        self.seen: dict[int, bool] = {}

    def at_least(self, n: int) -> bool:
        found = self.seen.get(n)
        if found is None:
            if not self.hay:
                self.hay = self.text.translate(self.table)
            found = self.seen[n] = "a" * n in self.hay
        return found


def min_count(pattern: re.Pattern[str], chars: frozenset[str]) -> int:
    """How many characters from `chars` every match of `pattern` in ASCII text consumes."""
    return _count(_parser.parse(pattern.pattern, pattern.flags), chars)


def _count(items: Any, chars: frozenset[str]) -> int:
    total = 0
    for op, av in items:
        if op is sre.LITERAL:
            total += chr(av) in chars
        elif op is sre.IN:
            total += _class_inside(av, chars)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            total += av[0] * _count(av[2], chars)
        elif op is sre.SUBPATTERN:
            total += _count(av[-1], chars)
        elif op is sre.ATOMIC_GROUP:
            total += _count(av, chars)
        elif op is sre.BRANCH:
            total += min(_count(b, chars) for b in av[1])
    return total
