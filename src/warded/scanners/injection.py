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
* `obfuscation`, when a phrase was only visible after folding or decoding.

The score is the sum of the weights of the distinct kinds found (a kind
counts once however often it occurs), capped at 1.0. `scan` reports one
finding per signal, each with that score, when the score reaches the
threshold, and nothing otherwise. No model, no download: a classifier can be
added as another scanner (docs/scanners.md).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from warded.scanners.base import Finding, merge_intervals
from warded.scanners.lexicon import KEY_WORDS
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
    MARKUP,
    PHRASES,
    PLAIN,
    ROT13_HINT,
    TRIGGERS,
    WEIGHTS,
    compile_kinds,
)

NAME = "injection"
DEFAULT_THRESHOLD = 0.5
MAX_DECODE = 8192  # characters of one encoded run that are decoded

_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyz", codecs.encode("abcdefghijklmnopqrstuvwxyz", "rot13")
)
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]{20,}={0,2}")
_HEX_ESCAPED = re.compile(r"\\x[0-9a-fA-F]{2}(?:\\x[0-9a-fA-F]{2}){7,}")
_HEX_SPACED = re.compile(r"(?:[0-9a-fA-F]{2}[ :]){8,}[0-9a-fA-F]{2}")
_HEX = frozenset("0123456789abcdefABCDEF")
_LEET_LETTERS = frozenset("aeiostb")  # single letters that digits and symbols also read as
_NON_LETTERS = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalpha()})
_SPLIT_WORD = re.compile(r"[A-Za-z][\u034f\u180e\u200b\u200c\u200d\u2060-\u2064\ufeff]+[A-Za-z]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]+")
_LOOKALIKE = "".join(chr(c) for c in CONFUSABLES)
_MIXED = re.compile(rf"[A-Za-z][{_LOOKALIKE}]|[{_LOOKALIKE}][A-Za-z]")
_TAGS = re.compile(r"[\U000e0000-\U000e007f]{4,}")
_SELECTORS = re.compile(r"[\ufe00-\ufe0f\U000e0100-\U000e01ef]{4,}")
_BLACK_FLAG = "\U0001f3f4"  # subdivision flags (England, Scotland) are tag sequences
_CORRECTOR = Corrector(KEY_WORDS)
_PERCENT = re.compile(r"(?:%[0-9a-fA-F]{2}[^%\s]{0,3}){4,}")
_ENTITIES = re.compile(r"(?:&#?\w{1,8};[^&\s]{0,3}){4,}")


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


class InjectionScanner:
    """Scores text for prompt injection and jailbreak framing; reports it at `threshold`.

    `weights` overrides some of the default weights (`patterns.WEIGHTS`);
    ValueError for an unknown kind or a threshold outside (0, 1].
    """

    name = NAME

    def __init__(
        self, threshold: float = DEFAULT_THRESHOLD, *, weights: Mapping[str, float] | None = None
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        unknown = set(weights or {}) - set(WEIGHTS)
        if unknown:
            raise ValueError(f"unknown signal kinds: {sorted(unknown)}")
        self.threshold = threshold
        self.weights = {**WEIGHTS, **(weights or {})}
        self._phrases = compile_kinds(PHRASES)
        self._markup = compile_kinds(MARKUP)
        self._plain = compile_kinds(PLAIN)
        self.gated = True  # search near trigger words only; False searches everywhere

    def scan(self, text: str) -> list[Finding]:
        """One finding per signal, scored with the text's score, if it reaches the threshold."""
        result = self.assess(text)
        if result.score < self.threshold:
            return []
        return [Finding(NAME, s.kind, "", s.start, s.end, result.score) for s in result.signals]

    def assess(self, text: str) -> Assessment:
        """The score of `text` and every signal found, sorted by position."""
        view = dehyphenate(fold(text))
        leet = deleet(view)
        words = frozenset(leet.text.translate(_NON_LETTERS).split())
        found = set(self._find(text, view, leet, words))
        fixed = _CORRECTOR.correct(leet, words)
        if fixed is not None:
            fixed_words = frozenset(fixed.text.translate(_NON_LETTERS).split())
            found.update(self._match(text, fixed, fixed_words, disguised=True))
        if not text.isascii():
            found.update(_characters(text))
            found.update(self._hidden(text))
        found.update(self._encoded(text, words))
        if _mentions_rot13(view.text):
            rot = View(leet.text.translate(_ROT13), leet.origin)
            rot_words = frozenset(rot.text.translate(_NON_LETTERS).split())
            found.update(self._match(text, rot, rot_words, disguised=True))
        signals = tuple(sorted(found, key=lambda s: (s.start, s.end, s.kind)))
        total = sum(self.weights[k] for k in {s.kind for s in signals})
        return Assessment(min(1.0, round(total, 6)), signals)

    def _find(self, text: str, view: View, leet: View, words: frozenset[str]) -> Iterable[Signal]:
        yield from self._match(text, leet, words, disguised=False)
        if len({w for w in words if len(w) == 1} - _LEET_LETTERS) >= 3:  # spaced-out letters?
            spaced = collapse(leet)
            if spaced is not None:
                spaced_words = frozenset(spaced.text.translate(_NON_LETTERS).split())
                yield from self._match(text, spaced, spaced_words, disguised=True)
        for table in (self._markup, self._plain):
            for kind, start, end in self._search(table, view.text, words):
                yield Signal(kind, *view.span(start, end))
        if "DAN" in text:
            for m in DAN.finditer(text):
                yield Signal("mode_switch", *m.span())

    def _match(
        self, text: str, view: View, words: frozenset[str], *, disguised: bool
    ) -> Iterable[Signal]:
        for kind, start, end in self._search(self._phrases, view.text, words):
            span = view.span(start, end)
            yield Signal(kind, *span)
            if disguised or text[span[0] : span[1]].lower() != view.text[start:end]:
                yield Signal("obfuscation", *span)

    def _search(
        self, patterns: dict[str, re.Pattern[str]], text: str, words: frozenset[str]
    ) -> Iterable[tuple[str, int, int]]:
        for kind, pattern in patterns.items():
            gate = TRIGGERS.get(kind) if self.gated else None
            if gate is None:
                windows: Iterable[tuple[int, int]] = [(0, len(text))]
            else:
                hits = gate[1] & words
                if not hits:
                    continue
                windows = _windows(text, hits, gate[0])
            for start, end in windows:
                for m in pattern.finditer(text, start, end):
                    yield kind, m.start(), m.end()

    def _decoded(self, decoded: str, start: int, end: int) -> set[Signal]:
        """Signals of a decoded payload, placed on the encoded run's span."""
        view = fold(decoded)
        leet = deleet(view)
        words = frozenset(leet.text.translate(_NON_LETTERS).split())
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
        cursor = 0
        for token in text.split():
            if len(token) < 20:
                continue
            at = text.find(token, cursor)
            cursor = at + len(token)
            for m in _BASE64.finditer(token):
                decoded = _decode_run(m.group()[:MAX_DECODE])
                if decoded is not None:
                    yield from self._decoded(decoded, at + m.start(), at + m.end())
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


def _windows(text: str, hits: Iterable[str], before: int) -> list[tuple[int, int]]:
    """Merged spans around every whole-word occurrence of a hit word."""
    n = len(text)
    spans: list[tuple[int, int]] = []
    for word in hits:
        i = text.find(word)
        while i != -1:
            j = i + len(word)
            if (i == 0 or not text[i - 1].isalpha()) and (j == n or not text[j].isalpha()):
                guard = GUARDS.get(word)
                if guard is None or _guarded(guard, text, i, j):
                    spans.append((max(0, i - before), min(n, j + AFTER)))
            i = text.find(word, j)
    return merge_intervals(spans)


def _guarded(guard: re.Pattern[str], text: str, start: int, end: int) -> bool:
    """Whether the cue is in the 24 characters before the word or after it."""
    before = guard.search(text[max(0, start - 24) : start])
    return before is not None or guard.search(text[end : end + 24]) is not None


def _mentions_rot13(text: str) -> bool:
    return ("rot" in text or "caesar" in text) and ROT13_HINT.search(text) is not None


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
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t\r" for ch in decoded)
    if " " not in decoded or printable < 0.9 * len(decoded):
        return None
    return decoded
