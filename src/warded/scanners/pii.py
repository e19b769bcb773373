"""Personal data: e-mail addresses, phone numbers, IBANs, card numbers, IPs, US SSNs.

Needs the `scan` extra (`pip install 'warded[scan]'`). E-mail, IBAN, card,
IP and SSN detection uses Presidio's pattern recognizers — their regular
expressions, scores and checks (IBAN mod-97 and country format, card Luhn
checksum, SSN exclusions, IP parsing, e-mail domain on the public suffix
list) — applied here directly, without Presidio's `AnalyzerEngine`, whose
per-call overhead was most of the cost. No model is loaded or downloaded.
The public suffix list is tldextract's bundled copy, never fetched.

What differs from Presidio's recognizers, on purpose:

* IBANs are found in any letter case (`de89 3704 …`), and validated on the
  upper-cased value;
* card numbers also include the schemes Presidio's pattern misses:
  Mastercard's 2221–2720 range, 14-digit Diners Club written 4-6-4 or
  4-4-4-2, and 16–19-digit UnionPay (62…), each Luhn-checked;
* phone numbers are parsed with `phonenumbers` (matcher at leniency VALID,
  international form for any country, national form for each of `regions`)
  but only when the digits *look like* a phone number: a `+` or `00`
  prefix, an area code in parentheses, digits in separated groups of at most
  four, or a word such as "phone", "tel", "call", "mobile" just before. A bare
  run of digits, or one that follows an id prefix ("INV-", "order #",
  "invoice"), is not a phone number.

For speed only windows of the text are read: around each "@" (±256
characters), each run of seven or more digits, and each IPv4 or IPv6 shape
(±48), widened to whitespace. Recognizers added through `extra` run in
Presidio's `AnalyzerEngine` on the whole text.

Scores are Presidio's: 1.0 for a validated IBAN, card or e-mail, 0.6 an IP
address, 0.4 a phone number, 0.5 an SSN written `123-45-6789` (0.05 the weak
shapes); `min_score` (default 0.4) drops weaker ones.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from warded.scanners._extras import require
from warded.scanners.base import Finding, merge_intervals
from warded.scanners.prefilter import min_count

NAME = "pii"
KINDS: dict[str, str] = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "IBAN_CODE": "iban",
    "CREDIT_CARD": "card",
    "IP_ADDRESS": "ip_address",
    "US_SSN": "us_ssn",
}
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")  # Presidio's default
MARGIN = 48  # characters kept on each side of a candidate
EMAIL_MARGIN = 256
_IP_SHAPE = re.compile(r"::|:[0-9A-Fa-f]{1,4}:|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_ASCII_IP_SHAPE = (  # on the text with digits as "0"; each starts with a literal
    re.compile(r":[0-9A-Fa-f]{1,4}:|::"),
    re.compile(r"0(?:0?0)?\.0(?:0?0)?\.0(?:0?0)?\.0"),
)
_ASCII_IPV4_TAIL = re.compile(r"\.0(?:0?0)?\.0(?:0?0)?\.0")  # in every IPv4 shape; starts with "."
_DIGIT_RUN = re.compile(r"\d(?:[ \t().\-/]{0,2}\d){6,}")
_ASCII_DIGIT_RUN = re.compile(r"0(?:[ \t().\-/]{0,2}0){6,}")  # on the text with digits as "0"
_SPACE = re.compile(r"\s")
_LAST_SPACE = re.compile(r"(?s:.*)\s")
_ZEROS = str.maketrans("123456789", "000000000")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d(?:[ \t().\-/]{0,2}\d){6,16}(?![\w])")
_NOT_PHONE = re.compile(  # dates and dotted quads
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,3}(?:\.\d{1,3}){3}"
)
_GROUPED = re.compile(r"\(?\d{1,4}\)?(?:[ \t.\-/]{1,2}\(?\d{1,4}\)?){2,}")
_PHONE_WORD_LIST = (
    "phone|tel|telephone|mobile|mobil|cell|fax|call|ring|sms|text|whatsapp|signal|dial"
    "|contact|hotline|helpline|number|handy|telefon|t[eé]l[eé]phone|portable|telefono"
    "|cellulare|m[oó]vil|celular|telemovel|telefoon|gsm"
)
_ID_WORD_LIST = (
    "invoice|order|inv|ref|reference|id|no|nr|num|ticket|case"
    "|account|acct|transaction|tracking|po|sku|serial|batch|build|version|receipt|booking"
    "|confirmation|customer|item|part|policy|claim"
)
_PHONE_WORDS = re.compile(rf"(?i:{_PHONE_WORD_LIST})\W{{0,4}}(?:\w+\W{{1,3}}){{0,2}}$")
_ID_BEFORE = re.compile(rf"(?:[A-Za-z]{{1,12}}[-_#/]|#|(?i:{_ID_WORD_LIST})\W{{0,3}})$")


def _backwards(words: str) -> str:
    """The alternatives of `words` spelt backwards (a bracketed class is one character)."""
    return "|".join(
        "".join(reversed(re.findall(r"\[[^\]]*\]|.", word))) for word in words.split("|")
    )


# The same two patterns reversed, matched at the start of the reversed text: the
# text ends with a match of the forward pattern (as "$" allows: at the end, or
# before a final newline) exactly when its reverse starts with one of these.
# A match is tried from one place instead of from each of the 32 characters.
_PHONE_WORDS_BACK = re.compile(
    rf"(?:\W{{1,3}}\w+){{0,2}}\W{{0,4}}(?i:{_backwards(_PHONE_WORD_LIST)})"
)
_ID_BEFORE_BACK = re.compile(
    rf"(?:[-_#/][A-Za-z]{{1,12}}|#|\W{{0,3}}(?i:{_backwards(_ID_WORD_LIST)}))"
)
PHONE_SCORE = 0.4
_VALIDATED = frozenset({"email", "card", "iban"})  # a passed check scores 1.0
# Patterns (Presidio's card and SSN patterns, and _MORE_CARDS) whose matches
# are digits with at most one "-", " " or "." between two of them, so all of a
# match's digits lie in one _DIGIT_RUN (gaps of up to two of " \t().-/"): a
# text whose digit runs all hold fewer digits than a match needs skips them.
_CHAINS = frozenset(
    {
        r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(6\d{3})|(1\d{3})|(3\d{3}))[- ]?(\d{3,4})[- ]?"
        r"(\d{3,4})[- ]?(\d{3,5})\b",
        r"\b([0-9]{5})-([0-9]{4})\b",
        r"\b([0-9]{3})-([0-9]{6})\b",
        r"\b(([0-9]{3})-([0-9]{2})-([0-9]{4}))\b",
        r"\b[0-9]{9}\b",
        r"\b([0-9]{3})[- .]([0-9]{2})[- .]([0-9]{4})\b",
    }
)
# Card numbers Presidio's pattern does not reach: Mastercard 2221-2720, Diners Club
# 14 digits in 4-6-4 or 4-4-4-2 groups, UnionPay 62 with 16 to 19 digits.
_MORE_CARDS = re.compile(
    r"(?<![\w-])(?:2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)(?:[- ]?\d{4}){3}"
    r"|3(?:0[0-5]\d|[689]\d\d)(?:[- ]?\d{6}[- ]?\d{4}|(?:[- ]?\d{4}){2}[- ]?\d\d)"
    r"|62\d\d(?:[- ]?\d{4}){3}(?:[- ]?\d{1,3})?)(?![\w-])"
)
_CHAINS = _CHAINS | {_MORE_CARDS.pattern}
# What a match of these patterns holds once its digits are "0" (dropping its
# word boundaries), searched in an ASCII text's "0" copy first: a literal
# starts each, so this is cheaper than the pattern over the digit windows.
_IN_ZEROS: dict[str, re.Pattern[str]] = {
    r"\b([0-9]{3})[- .]([0-9]{2})[- .]([0-9]{4})\b": re.compile(r"000[- .]00[- .]0000"),
    r"\b([0-9]{5})-([0-9]{4})\b": re.compile(r"00000-0000"),
    r"\b([0-9]{3})-([0-9]{6})\b": re.compile(r"000-000000"),
    r"\b(([0-9]{3})-([0-9]{2})-([0-9]{4}))\b": re.compile(r"000-00-0000"),
    r"\b[0-9]{9}\b": re.compile(r"000000000"),
    # IBAN (case-blind): two letters, then two digits
    r"(?<![A-Z0-9])([A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,6})((?:[ -]?[A-Z0-9]{4})?)"
    r"((?:[ -]?[A-Z0-9]{1,3})?)(?![A-Z0-9])": re.compile(r"00(?<=[A-Za-z]{2}00)"),
}
# Presidio's IPv6 patterns: each match holds "::" or, without one, this many ":".
_HEX = "[0-9A-Fa-f]{1,4}"
_IPV4 = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_COLONS: dict[str, int] = {
    rf"(?<![\w:])::(?:ffff(?::0{{1,4}})?:)?(?:{_IPV4}\.){{3}}{_IPV4}"
    r"(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?\b": 1_000,
    rf"(?<![\w:])(?:(?:{_HEX}:){{1,5}}:(?:{_HEX}:){{0,4}}|(?:{_HEX}:){{6}})(?:{_IPV4}\.){{3}}{_IPV4}"
    r"(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?\b": 6,
    rf"(?<![\w:])(?:(?:{_HEX}:){{7}}{_HEX}|(?:{_HEX}:){{1,7}}:|:(?::{_HEX}){{1,7}}"
    rf"|(?:{_HEX}:){{1,6}}:{_HEX}|(?:{_HEX}:){{1,5}}(?::{_HEX}){{1,2}}"
    rf"|(?:{_HEX}:){{1,4}}(?::{_HEX}){{1,3}}|(?:{_HEX}:){{1,3}}(?::{_HEX}){{1,4}}"
    rf"|(?:{_HEX}:){{1,2}}(?::{_HEX}){{1,5}}|{_HEX}:(?::{_HEX}){{1,6}}|:(?::{_HEX}){{1,6}})"
    r"(?:%[0-9a-zA-Z]+)?(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?(?![\w:]|\.\d)": 7,
    r"(?<![\w:])::(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?(?![\w:])": 1_000,
}


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    score: float
    check: Callable[[str], bool | None]

    @property
    def counts(self) -> tuple[int, int, int]:
        """How many ":", "." and "@" every match holds (in ASCII text)."""
        colons, dots, ats = (min_count(self.pattern, frozenset(ch)) for ch in ":.@")
        return colons, dots, ats

    @property
    def chain(self) -> int:
        """Digits a match holds in one digit run (_DIGIT_RUN), if it is one of _CHAINS."""
        if self.pattern.pattern not in _CHAINS:
            return 0
        return min_count(self.pattern, frozenset(string.digits))

    @property
    def near(self) -> str:
        """Which windows can hold a match: around an "@", an IP shape, or a digit run."""
        return {"email": "@", "ip_address": "ip"}.get(self.kind, "digits")


@dataclass(frozen=True, slots=True)
class _Windows:
    """Where candidates are: the token around each "@" and IP shape; ±MARGIN around digit runs."""

    at: list[tuple[int, int]]
    ip: list[tuple[int, int]]
    digits: list[tuple[int, int]]
    chain: int  # the most digits in one digit run (ASCII text), else a bound no rule needs
    ascii: bool
    runs: list[int]  # per window of `digits`, where its first digit run starts
    zeros: str  # an ASCII text with its digits as "0" (_ZEROS), else ""

    def starts(self) -> Iterable[tuple[tuple[int, int], int]]:
        return zip(self.digits, self.runs, strict=True)

    def __getitem__(self, near: str) -> list[tuple[int, int]]:
        return self.at if near == "@" else self.ip if near == "ip" else self.digits


class PiiScanner:
    """Finds personal data with Presidio's patterns and checks; no model is loaded.

    `regions` are the phone-number regions tried for numbers written
    without a country code; `extra` adds Presidio recognizers (e.g. a
    `PatternRecognizer` for employee ids), run by Presidio's engine on the
    whole text (`nlp`: "none", or "blank" for a blank spaCy pipeline), whose
    entity names become the finding kinds in lowercase. Raises ImportError
    naming the `scan` extra when Presidio or phonenumbers is not installed.
    """

    name = NAME

    def __init__(
        self,
        *,
        min_score: float = 0.4,
        regions: Sequence[str] = PHONE_REGIONS,
        extra: Sequence[Any] = (),
        nlp: Literal["none", "blank"] = "none",
    ) -> None:
        self.min_score = min_score
        self.regions = tuple(regions)
        # a pattern below min_score counts only if its check can raise it to 1.0
        self.rules = tuple(r for r in _rules() if r.score >= min_score or r.kind in _VALIDATED)
        self.needs = tuple(
            (r.counts if any(r.counts) else None, r.chain, _COLONS.get(r.pattern.pattern, 0))
            for r in self.rules
        )
        self.in_zeros = tuple(_IN_ZEROS.get(r.pattern.pattern) for r in self.rules)
        self._phonenumbers = require("phonenumbers", "PiiScanner")
        # phonenumbers compiles its metadata patterns through `re`'s cache of 512,
        # which the other scanners' patterns push them out of; keep them instead.
        require("phonenumbers.re_util", "PiiScanner").enable_pattern_cache()
        self.analyzer = _analyzer(tuple(extra), nlp) if extra else None

    def scan(self, text: str) -> list[Finding]:
        """Findings (path "") for the personal data in `text`, sorted by position."""
        found: set[tuple[str, int, int, float]] = set()
        windows = _windows(text)
        if self.min_score <= PHONE_SCORE and windows.digits:
            # a phone number's digits are in a digit run, a "+(" at most before it
            near = [(max(lo, run - 2), hi) for (lo, hi), run in windows.starts()]
            found.update(("phone", s, e, PHONE_SCORE) for s, e in self._phones(text, near))
        marks: dict[str, list[tuple[tuple[int, int], tuple[int, int, int, bool]]]] = {}
        rules = zip(self.rules, self.needs, self.in_zeros, strict=True)
        for rule, (counts, chain, colons), in_zeros in rules:
            near = windows[rule.near]
            if not near or chain > windows.chain:
                continue  # no window, or no digit run with the digits a match holds
            if in_zeros is not None and windows.zeros and in_zeros.search(windows.zeros) is None:
                continue  # an ASCII text without the digits (and letters) a match holds
            if chain:  # a match starts in a digit run
                near = [(max(lo, run), hi) for (lo, hi), run in windows.starts()]
            elif (counts or colons) and len(near) > 2:  # windows with the ":", "." and "@" needed
                if rule.near not in marks:
                    marks[rule.near] = [(w, _marks(text, *w)) for w in near]
                least = counts if counts and windows.ascii else (0, 0, 0)
                near = [w for w, m in marks[rule.near] if _holds(m, least, colons)]
            found.update(_matches(rule, text, near, self.min_score))
        if self.analyzer is not None:
            for r in self.analyzer.analyze(text, language="en", score_threshold=self.min_score):
                kind = KINDS.get(r.entity_type, r.entity_type.lower())
                found.add((kind, r.start, r.end, round(float(r.score), 6)))
        return [
            Finding(NAME, kind, "", start, end, score)
            for kind, start, end, score in sorted(
                _contained(found), key=lambda f: (f[1], f[2], f[0])
            )
        ]

    def _phones(self, text: str, windows: list[tuple[int, int]]) -> Iterable[tuple[int, int]]:
        pn = self._phonenumbers
        for lo, hi in windows:
            for m in _PHONE.finditer(text, lo, hi):
                candidate = m.group()
                digits = sum(map(str.isdigit, candidate))
                if not 7 <= digits <= 15 or _NOT_PHONE.fullmatch(candidate):
                    continue
                if not _looks_like_phone(text, m.start(), candidate):
                    continue
                # The matcher (not a bare parse) also checks national prefixes and
                # punctuation, as Presidio's phone recognizer does.
                for region in ("ZZ",) if candidate.startswith("+") else self.regions:
                    matches = pn.PhoneNumberMatcher(candidate, region, pn.Leniency.VALID)
                    found = next(iter(matches), None)
                    if found is not None:
                        yield m.start() + found.start, m.start() + found.end
                        break


def _position(f: tuple[str, int, int, float]) -> tuple[int, int, str]:
    return f[1], f[2], f[0]


def _looks_like_phone(text: str, start: int, candidate: str) -> bool:
    """A phone number's shape or a phone word before it, and no id prefix."""
    before = text[max(0, start - 32) : start]
    if candidate[0] == "+" or candidate.startswith("00") or "(" in candidate:
        return not _ends_with(_ID_BEFORE_BACK, before) or _ends_with(_PHONE_WORDS_BACK, before)
    if _GROUPED.fullmatch(candidate) is None:
        return _ends_with(_PHONE_WORDS_BACK, before)
    return _ends_with(_PHONE_WORDS_BACK, before) or not _ends_with(_ID_BEFORE_BACK, before)


def _ends_with(backwards: re.Pattern[str], text: str) -> bool:
    """Whether the forward form of `backwards`, ending in "$", is found in `text`."""
    reverse = text[::-1]
    if backwards.match(reverse) is not None:
        return True
    return reverse[:1] == "\n" and backwards.match(reverse, 1) is not None


def _marks(text: str, start: int, end: int) -> tuple[int, int, int, bool]:
    """How many ":", "." and "@" are in text[start:end], and whether it has a "::"."""
    return (
        text.count(":", start, end),
        text.count(".", start, end),
        text.count("@", start, end),
        text.find("::", start, end) != -1,
    )


def _holds(marks: tuple[int, int, int, bool], least: tuple[int, int, int], colons: int) -> bool:
    """At least `least` of ":", "." and "@", and with `colons`, a "::" or that many ":"."""
    n_colons, dots, ats, double = marks
    if n_colons < least[0] or dots < least[1] or ats < least[2]:
        return False
    return not colons or double or n_colons >= colons


def _matches(
    rule: _Rule, text: str, windows: list[tuple[int, int]], min_score: float
) -> Iterable[tuple[str, int, int, float]]:
    for lo, hi in windows:
        for m in rule.pattern.finditer(text, lo, hi):
            if rule.kind == "iban":
                span = _iban(rule, text, m)
                if span is not None:
                    yield "iban", *span, 1.0
                continue
            verdict = rule.check(m.group())
            score = rule.score if verdict is None else 1.0 if verdict else 0.0
            if score > 0.0 and score >= min_score:
                yield rule.kind, m.start(), m.end(), score


def _iban(rule: _Rule, text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """The longest valid IBAN the match starts (Presidio tries each optional tail)."""
    for group in (3, 2, 1):
        end = m.end(group) if m.end(group) > 0 else m.end()
        if rule.check(text[m.start() : end].upper()):
            return m.start(), end
    return None


def _contained(found: set[tuple[str, int, int, float]]) -> set[tuple[str, int, int, float]]:
    """Without findings inside another of the same kind with an equal or higher score."""
    return {
        f
        for f in found
        if not any(
            g != f and g[0] == f[0] and g[1] <= f[1] and f[2] <= g[2] and g[3] >= f[3]
            for g in found
        )
    }


def _rules() -> Iterable[_Rule]:
    known = require("presidio_analyzer.predefined_recognizers", "PiiScanner")
    tldextract = require("tldextract", "PiiScanner")
    # Presidio compiles with IGNORECASE, DOTALL and MULTILINE; none changes what these
    # patterns match (no ".", "^" or "$"; letters in classes of both cases) except
    # the IBAN's, which is used case-insensitively on purpose.
    flags = 0
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    offline("warm@example.com")  # loads the bundled list now, not on the first scan

    def email(value: str) -> bool:
        # Presidio's check calls tldextract's default extractor, which fetches
        # the suffix list over the network; this one only reads the bundled copy.
        return bool(offline(value).fqdn != "")

    cards = known.CreditCardRecognizer()
    recognizers: list[tuple[str, Any, Callable[[str], bool | None] | None]] = [
        ("email", known.EmailRecognizer(), email),
        ("card", cards, None),
        ("ip_address", known.IpRecognizer(), None),
        ("us_ssn", known.UsSsnRecognizer(), None),
    ]
    for kind, rec, check in recognizers:
        verdict = check if check is not None else _checker(rec)
        for p in rec.patterns:
            yield _Rule(kind, re.compile(p.regex, flags), p.score, verdict)
    yield _Rule("card", _MORE_CARDS, 0.3, _checker(cards))
    iban = known.IbanRecognizer()
    (pattern,) = iban.patterns
    yield _Rule(
        "iban", re.compile(pattern.regex, re.IGNORECASE), pattern.score, iban.validate_result
    )


def _checker(rec: Any) -> Callable[[str], bool | None]:
    """Presidio's verdict on a match: True valid, False invalid, None unknown."""

    def check(value: str) -> bool | None:
        if rec.invalidate_result(value):
            return False
        result: bool | None = rec.validate_result(value)
        return result

    return check


def _analyzer(extra: tuple[Any, ...], nlp_name: str) -> Any:
    presidio = require("presidio_analyzer", "PiiScanner")
    nlp = require("presidio_analyzer.nlp_engine", "PiiScanner")
    enhancers = require("presidio_analyzer.context_aware_enhancers", "PiiScanner")
    if nlp_name == "blank":
        require("spacy", "PiiScanner")
        engine = nlp.SlimSpacyNlpEngine(
            models=[{"lang_code": "en", "model_name": "blank:en"}], auto_download=False
        )
    else:
        engine = nlp.NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    registry = presidio.RecognizerRegistry(recognizers=list(extra), supported_languages=["en"])
    return presidio.AnalyzerEngine(
        nlp_engine=engine,
        registry=registry,
        supported_languages=["en"],
        context_aware_enhancer=_no_context(enhancers.ContextAwareEnhancer),
    )


def _no_context(base: Any) -> Any:
    class NoContext(base):  # type: ignore[misc]
        """Returns the recognizers' scores unchanged."""

        def __init__(self) -> None:
            super().__init__(0.0, 0.0, 0, 0)

        def enhance_using_context(
            self, text: str, raw_results: list[Any], *args: Any, **kwargs: Any
        ) -> list[Any]:
            return raw_results

    return NoContext()


def _windows(text: str) -> _Windows:
    n = len(text)
    ascii_ = text.isascii()
    at: list[tuple[int, int]] = []
    i = text.find("@")
    while i != -1:
        at.append(_token(text, i, i + 1, EMAIL_MARGIN))
        i = text.find("@", i + 1)
    zeros = ""
    if ascii_:
        zeros = text.translate(_ZEROS)
        ipv6, ipv4 = _ASCII_IP_SHAPE
        shapes = list(ipv6.finditer(zeros))
        if _ASCII_IPV4_TAIL.search(zeros) is not None:
            shapes += ipv4.finditer(zeros)
        runs = list(_ASCII_DIGIT_RUN.finditer(zeros))
        chain = max((m.group().count("0") for m in runs), default=0)
    else:
        shapes = list(_IP_SHAPE.finditer(text))
        runs = list(_DIGIT_RUN.finditer(text))
        chain = n  # not counted: more than any rule needs
    ip = [_token(text, *m.span(), MARGIN) for m in shapes]
    digits: list[tuple[int, int]] = []
    first: list[int] = []  # where the first digit run of each merged window starts
    for m in runs:
        start, end = max(0, m.start() - MARGIN), min(n, m.end() + MARGIN)
        lo, hi = _token(text, start, end, MARGIN)  # no token cut in two
        if digits and lo <= digits[-1][1]:
            digits[-1] = (digits[-1][0], max(digits[-1][1], hi))
        else:
            digits.append((lo, hi))
            first.append(m.start())
    return _Windows(merge_intervals(at), merge_intervals(ip), digits, chain, ascii_, first, zeros)


def _token(text: str, start: int, end: int, limit: int) -> tuple[int, int]:
    """`start`–`end` widened to the whitespace around it, by at most `limit` on each side."""
    floor, ceiling = max(0, start - limit), min(len(text), end + limit)
    left = _LAST_SPACE.match(text, floor, max(floor, start))
    right = _SPACE.search(text, min(end, ceiling), ceiling)
    return left.end() if left else floor, right.start() if right else ceiling
