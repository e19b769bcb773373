"""Prompt-injection and jailbreak heuristics, with an additive score.

`InjectionScanner.assess(text)` finds *signals* (see `patterns.WEIGHTS`):

* phrases, matched on the folded text (`normalize.fold`: NFKD without
  combining marks, Latin look-alikes, invisible characters dropped), with
  digits read as letters and spaced-out letters joined;
* conversation markup (`<|im_start|>`, `[INST]`, a line starting "system:");
* characters: zero-width characters splitting Latin words, bidirectional
  controls, words mixing Latin with Cyrillic or Greek look-alikes, and
  hidden text in Unicode tag characters or runs of variation selectors;
* encoded payloads: base64 and hex runs (and the whole text in rot13 when
  it mentions rot13) are decoded once and their phrases counted too;
* `obfuscation`, when a phrase was only visible after folding or decoding;
* with `tools=` (the session's tool names): a tool's name written in the data,
  and an order to do what one of the tools does (`tool_name`, `tool_action`).

The score is the sum of the weights of the distinct kinds found (a kind
counts once however often it occurs), capped at 1.0. `scan` reports one
finding per signal, each with that score, when the score reaches the
threshold, and nothing otherwise. No model, no download: a classifier can be
added as another scanner (docs/scanners.md).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import codecs
import functools
import html
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import ahocorasick_rs

from warded.scanners.base import Finding, merge_intervals
from warded.scanners.lexicon import (
    ACTION_TRIGGERS,
    KEY_WORDS,
    LEAD_WORDS,
    ORDER_LEAD,
    TARGET_TLDS,
    TARGET_WORDS,
)
from warded.scanners.normalize import (
    CONFUSABLES,
    Corrector,
    View,
    collapse,
    dehyphenate,
    deleet,
    fold,
)
from warded.scanners.patterns import (
    AFTER,
    DAN,
    GUARDS,
    LONG_AFTER,
    MARKUP,
    PHRASES,
    PLAIN,
    REQUIRES,
    ROT13_HINT,
    TAILED_GUARDS,
    TRIGGERS,
    WEIGHTS,
    compile_kinds,
)
from warded.scanners.prefilter import first_chars, first_words, guarded, min_run, run_table

_T = TypeVar("_T")
NAME = "injection"
DEFAULT_THRESHOLD = 0.5
MAX_DECODE = 8192  # characters of one encoded run that are decoded

_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyz", codecs.encode("abcdefghijklmnopqrstuvwxyz", "rot13")
)
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]{20,}={0,2}")
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_BASE64_TABLE = run_table(_BASE64_CHARS)
_BASE64_RUN = "a" * min_run(_BASE64, _BASE64_CHARS)  # 20: every match starts with such a run
_HEX_ESCAPED = re.compile(r"\\x[0-9a-fA-F]{2}(?:\\x[0-9a-fA-F]{2}){7,}")
_HEX_SPACED = re.compile(r"(?:[0-9a-fA-F]{2}[ :]){8,}[0-9a-fA-F]{2}")
_HEX = frozenset("0123456789abcdefABCDEF")
_LEET_LETTERS = frozenset("aeiostb")  # single letters that digits and symbols also read as
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LETTERS = re.compile(r"[^\W\d_]+")
_NON_LETTERS = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalpha()})
_SPLIT_WORD = re.compile(r"[A-Za-z][\u034f\u180e\u200b\u200c\u200d\u2060-\u2064\ufeff]+[A-Za-z]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]+")
_LOOKALIKE = "".join(chr(c) for c in CONFUSABLES)
_MIXED = re.compile(rf"[A-Za-z][{_LOOKALIKE}]|[{_LOOKALIKE}][A-Za-z]")
_TAGS = re.compile(r"[\U000e0000-\U000e007f]{4,}")
_SELECTORS = re.compile(r"[\ufe00-\ufe0f\U000e0100-\U000e01ef]{4,}")
_BLACK_FLAG = "\U0001f3f4"  # subdivision flags (England, Scotland) are tag sequences
_CORRECTOR = Corrector(KEY_WORDS)
_ROT13_HINT = guarded(ROT13_HINT)  # the same matches
_GUARDS = {word: guarded(pattern) for word, pattern in GUARDS.items()}  # the same matches
# each starts with its literal, so `re` skips ahead to it
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}[^%\s]{0,3}(?:%[0-9a-fA-F]{2}[^%\s]{0,3}){3,}")
_ENTITIES = re.compile(r"&#?\w{1,8};[^&\s]{0,3}(?:&#?\w{1,8};[^&\s]{0,3}){3,}")
_IBAN = re.compile(r"\d\d[a-z0-9]{10,30}")  # an IBAN after its country: check digits, account
_TLD = re.compile(r"\.(?:" + "|".join(TARGET_TLDS) + r")\b")
_LEAD = re.compile(ORDER_LEAD)
_SNAKE_CALL = re.compile(r"_[a-z0-9_]*\s*\(|`[a-z][a-z0-9]*_[a-z0-9_]*`")
_SNAKE_FIRST = first_chars(_SNAKE_CALL)  # "_" and "`"
_CLAUSE_MARKS = frozenset(".!?:;,\n>-*•()[]")
# "ta" (bort) and "di" are inside too many words to be looked up: Swedish "radera" and
# Spanish "dile" still are
ORDER_VERBS = frozenset(ACTION_TRIGGERS.split()) - {"e", "i", "o", "y", "ta", "di"} | {"email"}
ORDER_BEFORE = 64  # characters of clause mark and polite words before the verb
ORDER_REACH = 200  # characters from the verb to what the order needs (target, data, user)
ORDER_AFTER = 200  # characters after its start that the needed part can take
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
NEAR_FIX = 160  # characters searched before a corrected word (AFTER after it)


@dataclass(frozen=True, slots=True)
class Signal:
    """One heuristic hit: its kind and its span in the scanned text."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Assessment:
    """The score of one text and the signals behind it."""

    score: float
    signals: tuple[Signal, ...]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(s.kind for s in self.signals)


_Table = dict[str, re.Pattern[str]]
_Starts = dict[str, tuple[frozenset[str], frozenset[str]]]


@functools.cache
def _tables() -> tuple[_Table, _Table, _Table, _Starts, _Table]:
    """The kinds' patterns, built once per process (reading them off costs seconds):
    each with a test of its first character in front (the same matches, sooner); the
    words (or characters) each kind's matches start with, where they can be read off
    (in an ASCII text, the pattern is only tried where one of them stands); and the
    patterns as written, the reference the shortcuts are tested against."""
    phrases = {k: guarded(p) for k, p in compile_kinds(PHRASES).items()}
    markup = {k: guarded(p) for k, p in compile_kinds(MARKUP).items()}
    plain = {k: guarded(p) for k, p in compile_kinds(PLAIN).items()}
    starts = {
        kind: found
        for table in (phrases, markup, plain)
        for kind, pattern in table.items()
        if (found := first_words(pattern)) is not None and _rare(found[1])
    }
    return phrases, markup, plain, starts, compile_kinds({**PHRASES, **MARKUP, **PLAIN})


class InjectionScanner:
    """Scores text for prompt injection and jailbreak framing; reports it at `threshold`.

    `weights` overrides some of the default weights (`patterns.WEIGHTS`);
    ValueError for an unknown kind or a threshold outside (0, 1]. `tools` names
    the session's own tools (ValueError for an empty or non-string name,
    TypeError for one string instead of an iterable of names).
    """

    name = NAME

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        weights: Mapping[str, float] | None = None,
        tools: Iterable[str] = (),
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        unknown = set(weights or {}) - set(WEIGHTS)
        if unknown:
            raise ValueError(f"unknown signal kinds: {sorted(unknown)}")
        self.threshold = threshold
        self.weights = {**WEIGHTS, **(weights or {})}
        self._phrases, self._markup, self._plain, self._starts, self._reference = _tables()
        self.gated = True  # search near trigger words only; False searches everywhere
        # False: no shortcut (word index, first characters, first words), each kind's pattern
        # searched over its windows as written: the reference the shortcuts are tested against
        self.quick = True
        if isinstance(tools, str):
            raise TypeError("tools must be an iterable of tool names, not one string")
        names = list(tools)
        bad = [n for n in names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise ValueError(f"tool names must be non-empty strings: {bad!r}")
        self.tools = tuple(dict.fromkeys(names))
        # names of two words or more ("send_money", "createEvent"): identifiers, not words
        self._tool_names = tuple(
            {
                "_".join(_tool_words(n)): n.lower() for n in self.tools if len(_tool_words(n)) > 1
            }.values()
        )
        self._tool_actions = tuple(a for n in self.tools if (a := _tool_action(n)) is not None)
        self._tool_leads = ORDER_VERBS | {w for a in self._tool_actions for w in a.verbs}
        # the leads the word index does not hold that a text's words can be (`_lead_places`)
        self._own_leads = sorted(
            w for w in self._tool_leads - _INDEXED if w.isascii() and w.isalpha()
        )
        self._own_automaton = _whole_words(self._own_leads) if self._own_leads else None
        # the names an ASCII text can hold, found in one pass (`_named_tools`)
        self._ascii_names = [n for n in self._tool_names if n.isascii()]
        self._names_automaton = (
            ahocorasick_rs.BytesAhoCorasick([n.encode("ascii") for n in self._ascii_names])
            if self._ascii_names
            else None
        )

    def for_tools(self, names: Iterable[str]) -> InjectionScanner:
        """This scanner, also knowing the tools `names` (the gate calls it with the names
        of its registered tools: `Gate._tool_scanners`); itself when it knows them all."""
        known = (*self.tools, *names)
        if set(known) == set(self.tools):
            return self
        told = InjectionScanner(self.threshold, weights=self.weights, tools=known)
        told.gated = self.gated
        return told

    def scan(self, text: str) -> list[Finding]:
        """One finding per signal, scored with the text's score, if it reaches the threshold."""
        result = self.assess(text)
        if result.score < self.threshold:
            return []
        return [Finding(NAME, s.kind, "", s.start, s.end, result.score) for s in result.signals]

    def assess(self, text: str) -> Assessment:
        """The score of `text` and every signal found, sorted by position."""
        _MEMO.cache = {}  # word positions, found once per text for all the kinds
        _MEMO.index = self.quick
        try:
            return self._assess(text)
        finally:
            _MEMO.cache = None

    def _assess(self, text: str) -> Assessment:
        view = dehyphenate(fold(text))
        leet = deleet(view)
        words = _words(leet.text)
        found = set(self._find(text, view, leet, words))
        fixes = _CORRECTOR.fixes(words)
        fixed = _CORRECTOR.correct(leet, words, fixes)
        if fixed is not None:
            # only around the corrected words: elsewhere the text is what was matched above
            near = frozenset(fixes.values())
            spots = [fixed.span(i, i + 1)[0] for i in _positions(fixed.text, near)]
            found.update(
                signal
                for signal in self._match(text, fixed, near, disguised=True, near=near)
                if any(signal.start <= spot < signal.end for spot in spots)
            )  # only what the correction revealed
        if not text.isascii():
            found.update(_characters(text))
            found.update(self._hidden(text))
        found.update(self._encoded(text, words))
        if self.tools:
            found.update(self._tool_signals(view))
        if _mentions_rot13(view.text):
            rot = View(leet.text.translate(_ROT13), leet.origin)
            rot_words = _words(rot.text)
            found.update(self._match(text, rot, rot_words, disguised=True))
        signals = tuple(sorted(found, key=lambda s: (s.start, s.end, s.kind)))
        total = sum(self.weights[k] for k in {s.kind for s in signals})
        return Assessment(min(1.0, round(total, 6)), signals)

    def _find(self, text: str, view: View, leet: View, words: frozenset[str]) -> Iterable[Signal]:
        yield from self._match(text, leet, words, disguised=False, plain=view)
        singles = (
            words & _ASCII_LETTERS if leet.text.isascii() else {w for w in words if len(w) == 1}
        )
        if len(singles - _LEET_LETTERS) >= 3:  # spaced-out letters?
            spaced = collapse(leet)
            if spaced is not None:
                spaced_words = _words(spaced.text)
                yield from self._match(text, spaced, spaced_words, disguised=True)
        for table in (self._markup, self._plain):
            for kind, start, end in self._search(table, view.text, words):
                yield Signal(kind, *view.span(start, end))
        if _literal("DAN").search(text) is not None:
            for m in DAN.finditer(text):
                yield Signal("mode_switch", *m.span())

    def _match(
        self,
        text: str,
        view: View,
        words: frozenset[str],
        *,
        disguised: bool,
        near: frozenset[str] | None = None,
        plain: View | None = None,
    ) -> Iterable[Signal]:
        """Phrase signals in `view`; "obfuscation" too when the phrase needed the view.

        With `plain` (the same text before digits were read as letters), a phrase
        that also matches there is not obfuscated: digits and "@" in an address
        or an amount inside a phrase are not a disguise.
        """
        for kind, start, end in self._search(self._phrases, view.text, words, near):
            span = view.span(start, end)
            yield Signal(kind, *span)
            if disguised or (
                text[span[0] : span[1]].lower() != view.text[start:end]
                and (
                    plain is None
                    or text[span[0] : span[1]].lower() != plain.text[start:end]
                    or (self._phrases if self.quick else self._reference)[kind].search(
                        plain.text, start, end
                    )
                    is None
                )
            ):
                yield Signal("obfuscation", *span)

    def _search(
        self,
        patterns: dict[str, re.Pattern[str]],
        text: str,
        words: frozenset[str],
        near: frozenset[str] | None = None,
    ) -> Iterable[tuple[str, int, int]]:
        """Matches of each kind's pattern, searched near its triggers (or near `near` only)."""
        located = [
            (kind, windows)
            for kind in patterns
            if (windows := self._located(kind, text, words, near))
        ]
        if not self.quick:  # the reference: each kind's own pattern over each window
            for kind, windows in located:
                pattern = self._reference[kind]
                for start, end in windows:
                    for m in pattern.finditer(text, start, end):
                        yield kind, m.start(), m.end()
            return
        ascii_text = text.isascii()
        for kind, windows in located:
            pattern = patterns[kind]
            starts = self._starts.get(kind)
            if starts is None or not ascii_text:
                for start, end in windows:
                    for m in pattern.finditer(text, start, end):
                        yield kind, m.start(), m.end()
                continue
            first = starts[0] & _words(text)
            for start, end in windows:
                cursor = start
                for at in _starts_in(text, start, end, *starts, first):
                    if at >= cursor:
                        found = pattern.match(text, at, end)
                        if found is not None:
                            yield kind, at, found.end()
                            cursor = found.end()

    def _located(
        self, kind: str, text: str, words: frozenset[str], near: frozenset[str] | None
    ) -> list[tuple[int, int]]:
        """The windows of `text` that `kind`'s pattern is searched in (none: not searched)."""
        if not self.gated:
            return [(0, len(text))]
        if near is not None:
            return _windows(text, near, NEAR_FIX)
        if kind in _LOCATORS:
            return _LOCATORS[kind](text, words)
        gate = TRIGGERS.get(kind)
        if gate is None:
            if kind in REQUIRES and not _holds_one(text, kind):
                return []
            return [(0, len(text))]
        hits = gate[1] & _lexical(words)
        if not hits:
            return []
        return _windows(text, hits, gate[0], after=LONG_AFTER.get(kind, AFTER))

    def _tool_signals(self, view: View) -> Iterable[Signal]:
        """The session's tools named in the text, and orders to do what one of them does.

        An order: a verb that starts a clause, and in its sentence a form of a tool's verb
        ("reserve", "reservation") and one of the tool's object nouns ("hotel").
        """
        text = view.text
        n = len(text)
        for i, j in self._named_tools(text):
            yield Signal("tool_name", *view.span(i, j))
        if not self._tool_actions:
            return
        leads = [v for v in self._lead_places(text) if _lead(text, v)]
        ascii_text = text.isascii()
        for v in leads:
            end = _SENTENCE_END.search(text, v, min(n, v + ORDER_REACH))
            stop = end.start() if end is not None else min(n, v + ORDER_REACH)
            if ascii_text:  # its words are its runs of letters: no action named, no tokens
                named = set(text[v:stop].translate(_NON_LETTERS).split())
                if not any(named & a.verbs and named & a.objects for a in self._tool_actions):
                    continue
            tokens = [(m.group(), m.end()) for m in _LETTERS.finditer(text, v, stop)]
            said = {t for t, _ in tokens}
            for action in self._tool_actions:
                if said & action.verbs and said & action.objects:
                    last = max(e for t, e in tokens if t in action.verbs or t in action.objects)
                    yield Signal("tool_action", *view.span(v, last))
                    break

    def _named_tools(self, text: str) -> list[tuple[int, int]]:
        """The span of each tool name's first occurrence in `text` that stands whole (as an
        identifier): in ASCII text, from one pass over the text for all the names."""
        n = len(text)

        def whole(i: int, j: int) -> bool:
            return (i == 0 or not _ident_char(text[i - 1])) and (j == n or not _ident_char(text[j]))

        if self._names_automaton is None or not text.isascii():
            found: dict[str, int] = {}
            for name in self._tool_names:
                i = text.find(name)
                while i != -1 and not whole(i, i + len(name)):
                    i = text.find(name, i + 1)
                if i != -1:
                    found[name] = i
            return [(i, i + len(name)) for name, i in found.items()]
        first: dict[int, int] = {}
        matches = self._names_automaton.find_matches_as_indexes(
            text.encode("ascii"), overlapping=True
        )
        for k, i, j in matches:  # an ASCII text's bytes are its characters
            if k not in first and whole(i, j):
                first[k] = i  # the matches of one name come in the order they start
        return sorted({(i, i + len(self._ascii_names[k])) for k, i in first.items()})

    def _lead_places(self, text: str) -> list[int]:
        """Where a word of `_tool_leads` stands whole in `text`, in order: in a text the word
        index covers, the indexed ones read off it and the others (`_own_leads`) from one
        pass of the scanner's own automaton."""
        if not (text.isascii() and len(text) >= _INDEX_FROM and getattr(_MEMO, "index", True)):
            return _positions(text, self._tool_leads & _words(text))
        index = _memoized(("index", text), lambda: _index(text))
        places = [i for w in index.keys() & self._tool_leads for i in index[w]]
        if self._own_automaton is not None:
            matches = self._own_automaton.find_matches_as_indexes(
                _padded_bytes(text), overlapping=True
            )
            places += [start for _, start, _ in matches]
        places.sort()
        return places

    def _decoded(self, decoded: str, start: int, end: int) -> set[Signal]:
        """Signals of a decoded payload, placed on the encoded run's span."""
        view = fold(decoded)
        leet = deleet(view)
        words = _words(leet.text)
        inner = {s.kind for s in self._find(decoded, view, leet, words)} - {"obfuscation"}
        if not inner:
            return set()
        return {Signal(k, start, end) for k in (*inner, "encoded_payload", "obfuscation")}

    def _hidden(self, text: str) -> Iterable[Signal]:
        for m in _TAGS.finditer(text):
            if m.start() > 0 and text[m.start() - 1] == _BLACK_FLAG:
                continue
            yield Signal("hidden_text", *m.span())
            decoded = "".join(chr(ord(c) - 0xE0000) for c in m.group())
            yield from self._decoded(decoded, *m.span())
        for m in _SELECTORS.finditer(text):
            yield Signal("hidden_text", *m.span())
            raw = bytes(_selector_byte(c) for c in m.group())
            yield from self._decoded(raw.decode("utf-8", "replace"), *m.span())

    def _encoded(self, text: str, words: frozenset[str]) -> Iterable[Signal]:
        for m in _base64_runs(text):
            decoded = _decode_run(m.group()[:MAX_DECODE])
            if decoded is not None:
                yield from self._decoded(decoded, *m.span())
        if "%" in text:
            for m in _PERCENT.finditer(text):
                yield from self._decoded(urllib.parse.unquote(m.group()), *m.span())
        if "&" in text:
            for m in _ENTITIES.finditer(text):
                yield from self._decoded(html.unescape(m.group()), *m.span())
        runs: list[re.Match[str]] = []
        if "\\x" in text:
            runs.extend(_HEX_ESCAPED.finditer(text))
        if "hex" in words or "hexadecimal" in words:
            runs.extend(_HEX_SPACED.finditer(text))
        for m in runs:
            digits = re.sub(r"\\x|[ :]", "", m.group()[:MAX_DECODE])
            decoded = _as_text(binascii.unhexlify(digits[: len(digits) // 2 * 2]))
            if decoded is not None:
                yield from self._decoded(decoded, *m.span())


# ---------------------------------------------------------------- the session's own tools
# Verbs of tools that only read: an order to read is not an order to act.
_READ = """get list search read find fetch check view show lookup query describe count retrieve
    load open browse inspect see watch"""
_READ_VERBS = frozenset(_READ.split())
_STOP = "to from by for in on of the a an all and with at into or per"
_TOOL_STOP = frozenset(_STOP.split())
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_IDENT_PARTS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class _ToolAction:
    """What an order to use one tool looks like: its verb's forms and its object nouns."""

    verbs: frozenset[str]
    objects: frozenset[str]


def _tool_words(name: str) -> list[str]:
    return [w for w in _IDENT_PARTS.split(_CAMEL.sub("_", name).lower()) if w]


def _verb_forms(verb: str) -> frozenset[str]:
    """The verb, its inflections and its action noun: reserve, reserved, reserving, reservation."""
    stem = verb[:-1] if verb.endswith("e") else verb
    return frozenset(
        {verb, verb + "s", verb + "es", stem + "ed", stem + "ing", stem + "ion", stem + "ation"}
    )


def _tool_action(name: str) -> _ToolAction | None:
    words = _tool_words(name)
    if len(words) < 2 or words[0] in _READ_VERBS or not words[0].isalpha():
        return None
    objects = {w for w in words[1:] if w not in _TOOL_STOP and len(w) >= 3 and w.isalpha()}
    if not objects:
        return None
    return _ToolAction(
        _verb_forms(words[0]), frozenset(f for o in objects for f in (o, o + "s", o + "es"))
    )


def _ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _targets(text: str, lo: int, hi: int) -> int | None:
    """Where the first target an action request needs starts in `lo`–`hi`, if any.

    A target is an e-mail address or handle ("@"), a URL, a domain, a phone number
    ("+" and a digit) or an IBAN (two letters, two digits, ten or more letters and
    digits); words naming credentials are found by `_orders`.
    """
    at: list[int] = []
    i = text.find("@", lo, hi)
    if i != -1:
        j = i
        while j > lo and (text[j - 1].isalnum() or text[j - 1] in "._+-"):
            j -= 1
        at.append(j)
    for literal in ("http", "www.", "2fa"):
        i = text.find(literal, lo, hi)
        if i != -1:
            at.append(i)
    i = text.find("+", lo, hi)
    while i != -1 and not text[i + 1 : i + 2].isdigit():
        i = text.find("+", i + 1, hi)
    if i != -1:
        at.append(i)
    i = text.find(".", lo, hi)
    while i != -1:
        if _TLD.match(text, i) is not None:
            k = i
            while k > lo and (text[k - 1].isalnum() or text[k - 1] in "_-"):
                k -= 1
            at.append(k)
            break
        i = text.find(".", i + 1, hi)
    for m in _IBAN.finditer(text, lo, hi):
        if m.start() >= 2 and text[m.start() - 2 : m.start()].isalpha():
            at.append(m.start() - 2)
            break
    return min(at) if at else None


def _orders(
    vocabulary: frozenset[str], *, targets: bool = False
) -> Callable[[str, frozenset[str]], list[tuple[int, int]]]:
    """A locator for orders: an imperative verb followed, in reach, by one of the words
    of `vocabulary` (or, with `targets`, by a target: `_targets`)."""
    vocabulary = frozenset(w for w in vocabulary if len(w) > 1)

    def locate(text: str, words: frozenset[str]) -> list[tuple[int, int]]:
        # a verb at the start of a clause (after up to two polite words): an imperative
        verbs = _memoized(
            ("verbs", text, *sorted(ORDER_VERBS & _lexical(words))),
            lambda: [v for v in _positions(text, ORDER_VERBS & _lexical(words)) if _lead(text, v)],
        )
        if not verbs:
            return []
        after = _positions(text, vocabulary & _lexical(words))
        n = len(text)
        spans = []
        for v in verbs:
            hi = min(n, v + ORDER_REACH)
            k = bisect.bisect_right(after, v)
            found = after[k] if k < len(after) and after[k] < hi else None
            if targets:
                literal = _targets(text, v, hi if found is None else found)
                found = literal if literal is not None else found
            if found is not None:
                spans.append((max(0, v - ORDER_BEFORE), min(n, found + ORDER_AFTER)))
        return merge_intervals(spans)

    return locate


def _lead(text: str, v: int) -> bool:
    """`_leads`, kept for the rest of the `assess` call (the orders and the tool actions
    ask about the same verbs)."""
    return _memoized(("lead", text, v), lambda: _leads(text, v))


def _leads(text: str, v: int) -> bool:
    """Whether a clause starts at `v` (up to two polite or joining words before it)."""
    before = text[max(0, v - ORDER_BEFORE) : v].rstrip(" \t\r\f\v")  # a newline is a mark
    if not before:
        return _LEAD.search(text, max(0, v - ORDER_BEFORE), v) is not None
    if before[-1] not in _CLAUSE_MARKS and not before[-1].isalpha():
        return False
    if before[-1].isalpha() and before.rsplit(None, 1)[-1] not in LEAD_WORDS:
        return False
    return _LEAD.search(text, max(0, v - ORDER_BEFORE), v) is not None


def _positions(text: str, hits: Iterable[str]) -> list[int]:
    """Sorted start of every whole-word occurrence of the hit words."""
    out: list[int] = []
    for word in hits:
        out.extend(_occurrences(text, word))
    out.sort()
    return out


_MEMO = threading.local()  # `cache`: a dict while `assess` runs in this thread, else None;
# `index`: whether `_occurrences` may use the word index (False in the reference)


def _memoized(key: tuple[object, ...], compute: Callable[[], _T]) -> _T:
    """`compute()`, kept for the rest of the current `assess` call (texts are searched
    for the same words by several kinds)."""
    cache: dict[tuple[object, ...], Any] | None = getattr(_MEMO, "cache", None)
    if cache is None:
        return compute()
    found = cache.get(key)
    if found is None:
        found = cache[key] = compute()
    return found


def _occurrences(text: str, word: str) -> list[int]:
    """Start of every whole-word occurrence of `word` in `text`, in order."""
    if (
        word in _INDEXED
        and len(text) >= _INDEX_FROM
        and text.isascii()
        and getattr(_MEMO, "index", True)
    ):
        return _memoized(("index", text), lambda: _index(text)).get(word, [])

    def compute() -> list[int]:
        n = len(text)
        out: list[int] = []
        i = text.find(word)
        while i != -1:
            j = i + len(word)
            if (i == 0 or not text[i - 1].isalpha()) and (j == n or not text[j].isalpha()):
                out.append(i)
            i = text.find(word, j)
        return out

    return _memoized(("word", text, word), compute)


def _index(text: str) -> dict[str, list[int]]:
    """Where each word of `_INDEXED` occurs in ASCII `text` as a whole word, from one pass.

    In ASCII text the letters are A-Z and a-z, so with every other character made a
    space the words are the runs between spaces: with a space added at each end,
    " word " is the word standing whole, and `_automaton` finds all of them at once.
    """
    out: dict[str, list[int]] = {}
    for k, start, _ in _automaton().find_matches_as_indexes(_padded_bytes(text), overlapping=True):
        out.setdefault(_INDEX_WORDS[k], []).append(start)
    return out


def _padded_bytes(text: str) -> bytes:
    """ASCII `text` with every character but a letter made a space, and a space at each end:
    " word " in it is a word of `text` standing whole, and starts where the word does in
    `text` (the text is one character longer, and so is the pattern)."""
    return _memoized(("padded bytes", text), lambda: f" {_letters_only(text)} ".encode("ascii"))


def _whole_words(words: list[str]) -> ahocorasick_rs.BytesAhoCorasick:
    """An automaton that finds " word " for each of the ASCII `words` (`_padded_bytes`)."""
    patterns = [f" {w} ".encode("ascii") for w in words]
    return ahocorasick_rs.BytesAhoCorasick(patterns, implementation=_DFA)


@functools.cache
def _automaton() -> ahocorasick_rs.BytesAhoCorasick:
    """The automaton `_index` runs: `_whole_words(_INDEX_WORDS)`."""
    return _whole_words(_INDEX_WORDS)


def _starts_in(
    text: str,
    start: int,
    end: int,
    words: frozenset[str],
    chars: frozenset[str],
    present: frozenset[str],
) -> list[int]:
    """Where, in `start`-`end` of ASCII `text`, a word of `words` or a character of `chars`
    starts, in order: every place a match of a kind whose matches start with them
    (`prefilter.first_words`) can start in `finditer(text, start, end)`.

    A match that starts with a word starts after a character that is not a letter (or at
    0) and its word ends before one, or where the window ends: so the word is one of the
    text's words (`present`: its words in `words`), or the run of letters the window's
    end cuts.
    """
    padded = _memoized(("padded", text), lambda: f" {_letters_only(text)} ")
    out: list[int] = []
    for word in present:  # `padded[i:i + len(word) + 2]` is " word ": the word at `i`
        needle = f" {word} "
        i = padded.find(needle, start, end + 2)
        while i != -1:
            out.append(i)
            i = padded.find(needle, i + len(word) + 1, end + 2)
    if end + 1 < len(padded) and padded[end + 1] != " " and padded[end] != " ":
        cut = max(start, padded.rfind(" ", start, end + 1))  # the run the end cuts starts
        if padded[cut + 1 : end + 1] in words:  # after it (or before the window: no match)
            out.append(cut)
    for ch in chars:
        i = text.find(ch, start, end)
        while i != -1:
            out.append(i)
            i = text.find(ch, i + 1, end)
    out.sort()
    return out


def _rare(chars: frozenset[str]) -> bool:
    """Whether starting characters are few and not spaces: worth finding one by one."""
    return len(chars) <= 4 and not any(ch.isspace() for ch in chars)


def _cues(text: str, word: str) -> list[int]:
    """`_occurrences` of `word` that pass its guard (`GUARDS`), if it has one."""
    guard = _GUARDS.get(word)
    if guard is None:
        return _occurrences(text, word)
    return _memoized(
        ("cue", text, word),
        lambda: [
            i
            for i in _occurrences(text, word)
            if _guarded(guard, text, i, i + len(word), word in TAILED_GUARDS)
        ],
    )


def _tool_windows(text: str, words: frozenset[str]) -> list[tuple[int, int]]:
    """Spans around the tool nouns, and around each snake_case name called or in backticks."""
    gate = TRIGGERS["tool_reference"]
    hits = gate[1] & _lexical(words)
    spans = _windows(text, hits, gate[0], after=24) if hits else []  # the noun ends the phrase
    n = len(text)
    if "_" in text:
        for m in _matches_at(_SNAKE_CALL, text, _SNAKE_FIRST):
            start = m.start()
            while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                start -= 1
            spans.append((max(0, start - 2), min(n, m.end() + 2)))
    return merge_intervals(spans)


# "as much money as possible" needs no verb: searched around its own words too
_MONEY = "much autant viel tanto quanto maximo zoveel najwiecej"
_MONEY_WORDS = frozenset(_MONEY.split())


def _or(
    locate: Callable[[str, frozenset[str]], list[tuple[int, int]]], anchors: frozenset[str]
) -> Callable[[str, frozenset[str]], list[tuple[int, int]]]:
    """A locator's spans, and spans around the `anchors` words."""

    def both(text: str, words: frozenset[str]) -> list[tuple[int, int]]:
        hits = anchors & words
        if not hits:
            return locate(text, words)
        return merge_intervals([*locate(text, words), *_windows(text, hits, 32, after=64)])

    return both


def _break_windows(text: str, words: frozenset[str]) -> list[tuple[int, int]]:
    """Spans around "end" and "close", and around each closing tag's "</"."""
    gate = TRIGGERS["context_break"]
    hits = gate[1] & _lexical(words)
    spans = _windows(text, hits, gate[0]) if hits else []
    for m in _literal("</").finditer(text):
        spans.append((m.start(), min(len(text), m.start() + 40)))
    return merge_intervals(spans)


def _holds_one(text: str, kind: str) -> bool:
    """Whether `text` holds one of the strings of `REQUIRES[kind]`: in an ASCII text, from one
    pass of an automaton over its bytes."""
    if not text.isascii():
        return any(r in text for r in REQUIRES[kind])
    return bool(_required(kind).find_matches_as_indexes(text.encode("ascii")))


@functools.cache
def _required(kind: str) -> ahocorasick_rs.BytesAhoCorasick:
    return ahocorasick_rs.BytesAhoCorasick([r.encode("ascii") for r in REQUIRES[kind]])


@functools.cache
def _literal(string: str) -> re.Pattern[str]:
    """A pattern that finds `string`: on a long text, `re` finds a short literal sooner than
    `str.find` and `in` do (it looks for the first character and checks the rest)."""
    return re.compile(re.escape(string))


_LOCATORS: dict[str, Callable[[str, frozenset[str]], list[tuple[int, int]]]] = {
    "context_break": _break_windows,
    "action_request": _orders(TARGET_WORDS, targets=True),
    "bulk_request": _or(_orders(TRIGGERS["bulk_request"][1] | {"cash"}), _MONEY_WORDS),
    "about_user": _orders(TRIGGERS["about_user"][1]),
    "tool_reference": _tool_windows,
}
# every word that `_search` or a locator intersects with a text's words
_LEXICON = frozenset().union(
    ORDER_VERBS,
    TARGET_WORDS,
    TRIGGERS["bulk_request"][1] | {"cash"},
    *(vocabulary for _, vocabulary in TRIGGERS.values()),
)
# the words one of which each match of the rot13 hint holds whole (`patterns.ROT13_HINT`)
_ROT13_WORDS = frozenset({"rot", "rotate", "caesar"})
_INDEXED = frozenset(w for w in _LEXICON if w.isascii() and w.isalpha()) | _ROT13_WORDS
_INDEX_WORDS = sorted(_INDEXED)
_INDEX_FROM = 4096  # characters: in a shorter text, finding each word costs less than an index
_DFA = ahocorasick_rs.Implementation.DFA  # the fastest of the three (~1 MB, built in ~10 ms)


def _lexical(words: frozenset[str]) -> frozenset[str]:
    """The words of `words` that some locator or trigger looks for (`_LEXICON`)."""
    return _memoized(("lexical", words), lambda: words & _LEXICON)


def _words(text: str) -> frozenset[str]:
    """The whole words of `text`: its runs of letters."""
    if text.isascii():
        return _memoized(("words", text), lambda: frozenset(_tokens(text)))
    return frozenset(_LETTERS.findall(text))


def _letters_only(text: str) -> str:
    """ASCII `text` with every character but a letter made a space."""
    return _memoized(("letters", text), lambda: text.translate(_NON_LETTERS))


def _tokens(text: str) -> list[str]:
    """The words of ASCII `text`, in order."""
    return _memoized(("tokens", text), lambda: _letters_only(text).split())


def _windows(
    text: str, hits: Iterable[str], before: int, *, after: int = AFTER
) -> list[tuple[int, int]]:
    """Merged spans around every whole-word occurrence of a hit word."""
    n = len(text)
    spans = [
        (max(0, i - before), min(n, i + len(word) + after))
        for word in hits
        for i in _cues(text, word)
    ]
    return merge_intervals(spans)


def _guarded(guard: re.Pattern[str], text: str, start: int, end: int, tailed: bool) -> bool:
    """Whether the cue is in the 24 characters before the word or after it. `tailed`: the
    guard only matches a text that ends with a non-word character (`TAILED_GUARDS`), so a
    side that ends with a word character is not searched."""
    for side in (text[max(0, start - 24) : start], text[end : end + 24]):
        if tailed and (not side or _ident_char(side[-1])):
            continue
        if guard.search(side) is not None:
            return True
    return False


def _mentions_rot13(text: str) -> bool:
    cache: dict[tuple[object, ...], Any] | None = getattr(_MEMO, "cache", None)
    index = None
    if cache is not None and getattr(_MEMO, "index", True):
        index = cache.get(("index", text))  # the text's word index, if it was built
    if index is not None:  # every match holds "rot", "rotate" or "caesar" as a whole word
        return not index.keys().isdisjoint(_ROT13_WORDS) and _ROT13_HINT.search(text) is not None
    return ("rot" in text or "caesar" in text) and _ROT13_HINT.search(text) is not None


def _characters(text: str) -> Iterable[Signal]:
    for m in _SPLIT_WORD.finditer(text):
        yield Signal("invisible_characters", m.start() + 1, m.end() - 1)
    for m in _BIDI.finditer(text):
        yield Signal("invisible_characters", *m.span())
    for m in _MIXED.finditer(text):
        yield Signal("mixed_script", *m.span())


def _selector_byte(ch: str) -> int:
    code = ord(ch)
    return code - 0xFE00 if code <= 0xFE0F else code - 0xE0100 + 16


def _base64_runs(text: str) -> Iterable[re.Match[str]]:
    """`_BASE64.finditer(text)`: where a run of 20 of its characters starts (found in one
    translation of an ASCII text), the match there.

    Its characters are ASCII and "=" is not one of them, so a match starts where the
    first run of 20 or more of them after the previous match starts, and is the
    pattern's match at that place.
    """
    if not text.isascii():
        yield from _BASE64.finditer(text)
        return
    hay = text.translate(_BASE64_TABLE)
    i = hay.find(_BASE64_RUN)
    while i != -1:
        m = _BASE64.match(text, i)
        assert m is not None  # 20 of its characters, then any "=" up to two
        yield m
        i = hay.find(_BASE64_RUN, m.end())


def _matches_at(
    pattern: re.Pattern[str], text: str, first: frozenset[str] | None
) -> Iterable[re.Match[str]]:
    """`pattern.finditer(text)`, with `first` its `first_chars`: tried only where one of
    them is (found with `str.find`), which is faster when they are rare."""
    if first is None:
        yield from pattern.finditer(text)
        return
    starts: list[int] = []
    for ch in first:
        i = text.find(ch)
        while i != -1:
            starts.append(i)
            i = text.find(ch, i + 1)
    starts.sort()
    cursor = 0
    for i in starts:
        if i >= cursor:
            m = pattern.match(text, i)
            if m is not None:
                yield m
                cursor = m.end()


def _decode_run(run: str) -> str | None:
    body = run.rstrip("=")
    if len(body) % 2 == 0 and set(body) <= _HEX:
        return _as_text(binascii.unhexlify(body))
    padded = body + "=" * (-len(body) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return _as_text(decode(padded))
        except (binascii.Error, ValueError):
            continue
    return None


def _as_text(raw: bytes) -> str | None:
    """`raw` as text if it reads like words: valid UTF-8, printable, with spaces."""
    if b" " not in raw:  # in UTF-8 the byte of a space is only ever a space
        return None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t\r" for ch in decoded)
    if " " not in decoded or printable < 0.9 * len(decoded):
        return None
    return decoded
