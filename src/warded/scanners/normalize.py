"""Text folding for the injection heuristics, with a map back to the original.

`fold(text)` returns the text as the phrase patterns should see it, and the
index in `text` of every folded character, so a match is reported as a span
of the original:

* invisible characters are dropped: zero-width spaces and joiners, word
  joiner, soft hyphen, BOM, bidirectional controls, variation selectors and
  Unicode tag characters (which `hidden_payloads` decodes separately);
* every other character is NFKD-decomposed with its combining marks dropped
  (full-width and mathematical letters, ligatures, accents, "zalgo" marks),
  and Cyrillic and Greek letters that look like Latin ones become Latin;
* letters are case-folded; "ł", "ø", "đ", "æ", "œ", "ı", "ß" become Latin letters.

`deleet` and `collapse` derive further views: digits and symbols read as
letters ("1gn0r3"), and letters spaced out one by one ("i g n o r e");
`dehyphenate` joins words hyphenated across a line break ("instruc-\ntions");
`correct` replaces a word one typing error away from a key word of the
lexicon ("iunstructions") with that word.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    "\u3164\ufeff\uffa0"
)
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Cyrillic and Greek letters that render like Latin ones (a subset of Unicode's
# confusables that covers the lowercase and capital look-alikes).
_LOOKALIKES = (
    "аa еe оo рp сc уy хx іi јj ѕs ԁd һh ԛq ԝw үy ӏl кk ɡg "
    "αa οo ιi κk νv τt υu χx ρp εe "
    "АA ВB ЕE КK МM НH ОO РP СC ТT ХX ІI ЈJ ЅS ҮY "
    "ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX"
)
CONFUSABLES = {ord(pair[0]): pair[1] for pair in _LOOKALIKES.split()}
_LATIN = str.maketrans(
    {
        "ł": "l",
        "Ł": "L",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ı": "i",
        "ß": "ss",
    }
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LEET = str.maketrans("013457@$", "oieastas")
_ODD = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e01ef"
    "\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u0370-\u03ff\u0400-\u04ff\u0141\u0142\u00d8\u00f8\u0110\u0111\u00c6\u00e6\u0152\u0153"
    "\u0131\u00df\u00c0-\u00de]"
)
_SEPARATORS = " \t.-_*+|/"
_SHAPE = str.maketrans(
    {chr(c): "a" if chr(c).isalpha() else " " if chr(c) in _SEPARATORS else "#" for c in range(128)}
)
_GAP = re.compile(r"[^a-z]+")
# " a a a " or " a  a  a " in the shape: one search (`re` finds the shared " a " and checks
# what follows, faster than `in`)
_THREE_LONE = re.compile(" a (?:a a | a  a )")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_SPACED = re.compile(r"(?<![a-z0-9])(?:[a-z][ \t.\-_*+|/]{1,3}){3,}[a-z](?![a-z0-9])")


@dataclass(frozen=True, slots=True)
class View:
    """A transformed text and, per character, its index in the original (None: the same)."""

    text: str
    origin: list[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that `text[start:end]` came from."""
        if self.origin is None or end <= start:
            return start, end
        return self.origin[start], self.origin[end - 1] + 1


def fold(text: str) -> View:
    """`text` folded as the module docstring says, with its origin map."""
    if text.isascii():
        return View(text.lower())  # in ASCII text, only A-Z change
    if unicodedata.is_normalized("NFKD", text) and _ODD.search(text) is None:
        return View(text.translate(_ASCII_LOWER))
    out: list[str] = []
    origin: list[int] = []
    pos = 0
    for run in _NON_ASCII.finditer(text):
        out.append(text[pos : run.start()])
        origin.extend(range(pos, run.start()))
        for i in range(run.start(), run.end()):
            part = _fold_char(text[i])
            out.append(part)
            origin.extend([i] * len(part))
        pos = run.end()
    out.append(text[pos:])
    origin.extend(range(pos, len(text)))
    return View("".join(out).translate(_ASCII_LOWER), origin)


_HYPHENATED = re.compile(r"(?<=[a-z])-[ \t]*\r?\n[ \t]*(?=[a-z])")
# "-\n", "-\r\n" or "- \n" somewhere: one search (`re` looks for the "-" and checks what
# follows, three times faster than three `in` tests on a long text)
_BREAK = re.compile(r"-(?:\n|\r\n| \n)")


def dehyphenate(view: View) -> View:
    """`view` with words hyphenated across a line break joined."""
    if _BREAK.search(view.text) is None:
        return view
    out: list[str] = []
    origin: list[int] = []
    pos = 0
    for m in _HYPHENATED.finditer(view.text):
        _copy(view, pos, m.start(), out, origin)
        pos = m.end()
    _copy(view, pos, len(view.text), out, origin)
    return View("".join(out), origin)


class Corrector:
    """Finds words one edit (insertion, deletion, substitution, swap) from a key word.

    Only key words of eight letters or more are corrected, and a word that the
    key word starts, or that starts with the key word, is left alone: an
    inflection ("ignored", "instructed") or the stem in another language
    ("command", "commando").
    """

    MIN = 8

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = frozenset(k for k in keys if len(k) >= self.MIN and k.isalpha())
        self.heads: dict[str, list[str]] = {}
        self.tails: dict[str, list[str]] = {}
        for k in self.keys:
            self.heads.setdefault(k[:3], []).append(k)
            self.tails.setdefault(k[-3:], []).append(k)
        self._fix: Callable[[str], str | None] = functools.lru_cache(maxsize=1 << 16)(self._key_for)

    def fixes(self, words: Iterable[str]) -> dict[str, str]:
        """The misspelled words among `words` and the key word each stands for."""
        low = self.MIN - 1
        out: dict[str, str] = {}
        for w in words:
            if len(w) >= low:
                key = self._fix(w)
                if key is not None:
                    out[w] = key
        return out

    def _key_for(self, w: str) -> str | None:
        """The key word `w` is a misspelling of, if any (cached: vocabularies repeat)."""
        if w in self.keys:
            return None
        candidates: list[str] = [*self.heads.get(w[:3], []), *self.tails.get(w[-3:], [])]
        for k in candidates:
            if abs(len(k) - len(w)) <= 1 and _one_edit(w, k) and not _inflected(w, k):
                return k
        return None

    def correct(
        self, view: View, words: frozenset[str], fixes: dict[str, str] | None = None
    ) -> View | None:
        """`view` with misspelled key words replaced; None if there are none.

        `fixes`: `self.fixes(words)` if the caller has it already."""
        fixes = self.fixes(words) if fixes is None else fixes
        if not fixes:
            return None
        pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, fixes)) + r")\b")
        out: list[str] = []
        origin: list[int] = []
        pos = 0
        for m in pattern.finditer(view.text):
            _copy(view, pos, m.start(), out, origin)
            fixed = fixes[m.group()]
            at = [view.origin[i] if view.origin is not None else i for i in range(*m.span())]
            out.append(fixed)
            origin.extend(at[min(i, len(at) - 1)] for i in range(len(fixed)))
            pos = m.end()
        _copy(view, pos, len(view.text), out, origin)
        return View("".join(out), origin)


def _inflected(word: str, key: str) -> bool:
    """An inflection, or the same stem in another language ("command", "commando")."""
    return word.startswith(key) or key.startswith(word)


def _one_edit(a: str, b: str) -> bool:
    """Whether `a` and `b` differ by one insertion, deletion, substitution or swap."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i, j = [*diff, 0, 0][:2]
        return len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def deleet(view: View) -> View:
    """`view` with digits and symbols that stand for letters read as those letters."""
    return View(view.text.translate(_LEET), view.origin)


def collapse(view: View) -> View | None:
    """`view` with runs of single spaced-out letters joined into words; None if there are none.

    Within a run the most common gap is dropped ("i g n o r e" → "ignore")
    and any other gap becomes one space ("i-g-n-o-r-e a-l-l" → "ignore all").
    """
    shape = f" {view.text.translate(_SHAPE)} "
    if _THREE_LONE.search(shape) is None:
        return None  # three lone letters in a row: a cheap test before the pattern
    runs = list(_SPACED.finditer(view.text))
    if not runs:
        return None
    src = view.text
    out: list[str] = []
    origin: list[int] = []
    pos = 0
    for run in runs:
        _copy(view, pos, run.start(), out, origin)
        gaps = [(g.start(), g.end()) for g in _GAP.finditer(src, run.start(), run.end())]
        usual = Counter(src[s:e] for s, e in gaps).most_common(1)[0][0]
        letter = run.start()
        for start, end in [*gaps, (run.end(), run.end())]:
            _copy(view, letter, start, out, origin)
            if start < run.end() and src[start:end] != usual:
                out.append(" ")
                origin.append(view.origin[start] if view.origin is not None else start)
            letter = end
        pos = run.end()
    _copy(view, pos, len(src), out, origin)
    return View("".join(out), origin)


def _copy(view: View, start: int, end: int, out: list[str], origin: list[int]) -> None:
    out.append(view.text[start:end])
    origin.extend(view.origin[start:end] if view.origin is not None else range(start, end))


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if ch in INVISIBLE or _is_selector_or_tag(ch):
        return ""
    parts = unicodedata.normalize("NFKD", ch)
    kept = "".join(p for p in parts if not unicodedata.combining(p) and not _is_mark(p))
    return kept.translate(CONFUSABLES).translate(_LATIN).casefold()


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Me")


def _is_selector_or_tag(ch: str) -> bool:
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0000 <= code <= 0xE01EF
