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

* `first_chars(pattern)`: every character a match can start with (any text),
  and `guarded(pattern)`: the pattern with that test, and the word boundary
  all its alternatives start with, in front; the same matches, with most
  positions rejected in one step (the injection scanner's kinds).
"""

from __future__ import annotations

import re
from re import _compiler, _parser  # type: ignore[attr-defined]
from re import _constants as sre  # type: ignore[attr-defined]
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


def first_chars(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Every character a non-empty match of `pattern` can start with, or None if unknown.

    Read off the parsed pattern (any text, not only ASCII): the characters of the
    literals and classes the match can consume first, looking past zero-width
    assertions and past parts that can match nothing. None for a case-insensitive
    pattern, a class given by a category ("\\w") or a negation, any character,
    or a pattern that can match the empty string.
    """
    if pattern.flags & re.IGNORECASE:
        return None
    chars: set[str] = set()
    empty = _first(_parser.parse(pattern.pattern, pattern.flags), chars)
    return None if empty is None or empty else frozenset(chars)


def _first(items: Any, chars: set[str]) -> bool | None:
    """Adds to `chars` what the sequence can consume first; whether it can consume
    nothing (None: not known)."""
    for op, av in items:
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            continue  # zero-width
        if op is sre.LITERAL:
            chars.add(chr(av))
            return False
        if op is sre.IN:
            members = _members(av)
            if members is None:
                return None
            chars |= members
            return False
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            empty = _first(av[2], chars)
            if empty is None:
                return None
            if av[0] >= 1 and not empty:
                return False
        elif op is sre.SUBPATTERN:
            empty = _first(av[-1], chars)
            if empty is None:
                return None
            if not empty:
                return False
        elif op is sre.BRANCH:
            results = [_first(branch, chars) for branch in av[1]]
            if None in results:
                return None
            if not any(results):
                return False
        else:
            return None  # any character, a category, a back reference, an atomic group
    return True


def _members(items: Any) -> set[str] | None:
    """The characters a class matches, if it lists them (literals and ASCII ranges)."""
    members: set[str] = set()
    for op, av in items:
        if op is sre.LITERAL:
            members.add(chr(av))
        elif op is sre.RANGE and av[1] < 128:
            members.update(chr(c) for c in range(av[0], av[1] + 1))
        else:
            return None
    return members


def starts_at_boundary(pattern: re.Pattern[str]) -> bool:
    """Whether every alternative of `pattern` starts with a word boundary ("\\b")."""
    items = _parser.parse(pattern.pattern, pattern.flags)
    while len(items) == 1 and items[0][0] is sre.SUBPATTERN:
        items = items[0][1][-1]
    branches = items[0][1][1] if len(items) == 1 and items[0][0] is sre.BRANCH else [items]
    return all(_leads_with_boundary(b) for b in branches)


def _leads_with_boundary(items: Any) -> bool:
    if not len(items):
        return False
    op, av = items[0]
    if op is sre.AT:
        return bool(av is sre.AT_BOUNDARY)
    if op is sre.SUBPATTERN:
        return _leads_with_boundary(av[-1])
    if op is sre.BRANCH:
        return all(_leads_with_boundary(b) for b in av[1])
    return False


def guarded(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """`pattern` with a test of its first character (`first_chars`) in front, and its
    shared word boundary before that: the same matches, found faster where most
    positions cannot start one. `pattern` itself when nothing is known, and when `re`
    already skips ahead to a literal prefix or a set of first characters (the test
    in front would hide them from it)."""
    first = first_chars(pattern)
    if first is None or _skips_ahead(pattern):
        return pattern
    members = "".join(_class_char(ch) for ch in sorted(first))
    boundary = r"\b" if starts_at_boundary(pattern) else ""
    return re.compile(f"{boundary}(?=[{members}])(?:{pattern.pattern})", pattern.flags)


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-[" else ch


def _skips_ahead(pattern: re.Pattern[str]) -> bool:
    """Whether `re` searches for `pattern` by its literal prefix or first characters."""
    parsed = _parser.parse(pattern.pattern, pattern.flags)
    literal = getattr(_compiler, "_get_literal_prefix", None)
    charset = getattr(_compiler, "_get_charset_prefix", None)
    if literal is None or charset is None:
        return False
    return bool(literal(parsed, pattern.flags)[0]) or charset(parsed, pattern.flags) is not None


class _Unknown(Exception):
    """The pattern's first word cannot be read off."""


_NOT_LETTERS = (sre.CATEGORY_NOT_WORD, sre.CATEGORY_SPACE, sre.CATEGORY_DIGIT)
_LONGEST = 40  # letters of one first word; longer: unknown (a repeat of letters)
_MOST = 4096  # first words and characters of one pattern; more: unknown
_DEEPEST = 64  # nested groups and repeats followed at once; more: unknown (a repeat of nothing)


def first_words(pattern: re.Pattern[str]) -> tuple[frozenset[str], frozenset[str]] | None:
    """(words, chars): every match of `pattern` starts either with a character of `chars`
    (none of them a letter) or with a word of `words` standing whole: the characters
    before and after it are not letters (`str.isalpha`), or it ends where the searched
    part of the text ends (`endpos`). None when that cannot be read off the parsed
    pattern (a repeat of letters, a class given by a category that holds letters, a
    pattern that can match nothing, case-insensitive matching, ...).
    """
    if pattern.flags & re.IGNORECASE:
        return None
    words: set[str] = set()
    chars: set[str] = set()
    items = _parser.parse(pattern.pattern, pattern.flags)
    try:
        _walk(((items, 0),), "", False, words, chars)
    except _Unknown:
        return None
    return frozenset(words), frozenset(chars)


def _walk(
    frames: tuple[tuple[Any, int], ...], word: str, left: bool, words: set[str], chars: set[str]
) -> None:
    """Follows every way the pattern can start from `frames` (a stack of (items, next
    index)), with `word` the letters consumed so far and `left` whether a character
    before them is known not to be a letter; adds where each way ends to `words`/`chars`."""
    if len(words) + len(chars) > _MOST or len(word) > _LONGEST or len(frames) > _DEEPEST:
        raise _Unknown
    if not frames:
        raise _Unknown  # the match can end inside its first word, or be empty
    items, i = frames[-1]
    if i == len(items):
        _walk(frames[:-1], word, left, words, chars)
        return
    op, av = items[i]
    after = (*frames[:-1], (items, i + 1))
    if op is sre.AT:
        if av is sre.AT_BOUNDARY:
            if word:
                words.add(word)  # a letter, then no word character
            else:
                _walk(after, word, True, words, chars)
        elif av in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING):
            if not word:  # at 0 only: nothing before
                _walk(after, word, True, words, chars)
        elif av in (sre.AT_END, sre.AT_END_STRING) and word:
            words.add(word)  # the end, or a final newline
        else:
            raise _Unknown
    elif op is sre.ASSERT and av[0] == -1 and not word and _not_letters(av[1]):
        _walk(after, word, True, words, chars)  # a lookbehind for a character, not a letter
    elif op in (sre.ASSERT, sre.ASSERT_NOT):
        _walk(after, word, left, words, chars)  # zero-width: only narrows the matches
    elif op is sre.LITERAL:
        _consume(chr(av), after, word, left, words, chars)
    elif op is sre.IN:
        members = _members(av)
        if members is not None:
            for ch in sorted(members):
                _consume(ch, after, word, left, words, chars)
        elif word and _not_letters(((op, av),)):
            words.add(word)
        else:
            raise _Unknown
    elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, sub = av
        if low == 0:
            _walk(after, word, left, words, chars)
        if high != 0:
            more = high if high == sre.MAXREPEAT else high - 1
            again = ([(op, (max(0, low - 1), more, sub))], 0)  # the repeat, once less
            _walk((*after, again, (sub, 0)), word, left, words, chars)
    elif op is sre.SUBPATTERN:
        _walk((*after, (av[-1], 0)), word, left, words, chars)
    elif op is sre.BRANCH:
        for branch in av[1]:
            _walk((*after, (branch, 0)), word, left, words, chars)
    else:
        raise _Unknown


def _consume(
    ch: str,
    after: tuple[tuple[Any, int], ...],
    word: str,
    left: bool,
    words: set[str],
    chars: set[str],
) -> None:
    if not ch.isalpha():
        (words if word else chars).add(word or ch)
    elif word or left:
        _walk(after, word + ch, left, words, chars)
    else:
        raise _Unknown  # a letter with nothing known before it: maybe inside a word


def _not_letters(items: Any) -> bool:
    """Whether the items are one character class (or literal) that holds no letter."""
    if len(items) != 1:
        return False
    op, av = items[0]
    if op is sre.LITERAL:
        return not chr(av).isalpha()
    if op is not sre.IN:
        return False
    members = _members(av)
    if members is not None:
        return not any(ch.isalpha() for ch in members)
    return all(o is sre.CATEGORY and a in _NOT_LETTERS for o, a in av)
