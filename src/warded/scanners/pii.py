"""Personal data: e-mail addresses, phone numbers, IBANs, card numbers, IPs, US SSNs.

Needs the `scan` extra (`pip install 'warded[scan]'`). E-mail, IBAN, card,
IP and SSN detection is Presidio's pattern recognizers with their checks
(IBAN mod-97 checksum, card Luhn checksum, SSN exclusions, e-mail domain on
the public suffix list), run by Presidio's `AnalyzerEngine`. No model is
loaded or downloaded: by default the engine is Presidio's no-op NLP engine
(pattern recognizers read no tokens); `nlp="blank"` gives it a blank spaCy
pipeline (`blank:en`) instead, at about 3 µs per token for nothing these
recognizers use. The public suffix list is tldextract's bundled copy, never
fetched. Context-word boosting is off: it needs lemmas, and its cost grows
with the square of the findings.

Phone numbers are parsed with `phonenumbers` directly: a run of 7 to 15
digits (not shaped like a date) is valid in international form, or for one
of `regions` when written without a country code. Presidio's own phone
recognizer does the same through phonenumbers' matcher at ten times the
cost.

For speed the engine does not read the whole text: only windows around the
characters every built-in entity needs (an "@", a run of seven digits, an
IPv4 or IPv6 shape), joined into one shorter text. Recognizers added through
`extra` see the whole text instead.

Scores are Presidio's: 1.0 for a validated IBAN, card or e-mail, 0.6 an IP
address, 0.4 a phone number, 0.3–0.5 an SSN by format; `min_score`
(default 0.4) drops weaker ones.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from warded.scanners._extras import require
from warded.scanners.base import Finding

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
_CANDIDATE = re.compile(
    r"@|::|:[0-9A-Fa-f]{1,4}:|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\d(?:[ \t().\-/]{0,2}\d){6,}"
)
_JOIN = "\n\n"
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d(?:[ \t().\-/]{0,2}\d){6,16}(?![\w])")
_NOT_PHONE = re.compile(  # dates and dotted quads
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,3}(?:\.\d{1,3}){3}"
)
PHONE_SCORE = 0.4


class PiiScanner:
    """Finds personal data with Presidio's recognizers; no model is loaded.

    `regions` are the phone-number regions tried for numbers written
    without a country code; `nlp` is Presidio's NLP engine ("none", or
    "blank" for a blank spaCy pipeline); `extra` adds Presidio recognizers (e.g. a
    `PatternRecognizer` for employee ids), whose entity names become the
    finding kinds in lowercase. Raises ImportError naming the `scan` extra
    when Presidio or spaCy is not installed.
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
        self.analyzer = _analyzer(tuple(extra), nlp)
        self._phonenumbers = require("phonenumbers", "PiiScanner")
        self._windowed = not extra

    def scan(self, text: str) -> list[Finding]:
        """Findings (path "") for the personal data in `text`, sorted by position."""
        found: set[tuple[str, int, int, float]] = set()
        if self.min_score <= PHONE_SCORE:
            found.update(("phone", s, e, PHONE_SCORE) for s, e in self._phones(text))
        windows = _windows(text) if self._windowed else [(0, len(text))]
        if windows:
            found.update(self._analyze(text, windows))
        return [
            Finding(NAME, kind, "", start, end, score)
            for kind, start, end, score in sorted(found, key=lambda f: (f[1], f[2], f[0]))
        ]

    def _analyze(
        self, text: str, windows: list[tuple[int, int]]
    ) -> Iterable[tuple[str, int, int, float]]:
        """Presidio on the windows joined into one text, results placed back in `text`."""
        joined = _JOIN.join(text[s:e] for s, e in windows)
        starts: list[int] = []
        pos = 0
        for s, e in windows:
            starts.append(pos)
            pos += e - s + len(_JOIN)
        for r in self.analyzer.analyze(joined, language="en", score_threshold=self.min_score):
            k = _window_of(starts, r.start)
            base = windows[k][0] - starts[k]
            kind = KINDS.get(r.entity_type, r.entity_type.lower())
            yield kind, r.start + base, min(r.end + base, windows[k][1]), round(float(r.score), 6)

    def _phones(self, text: str) -> Iterable[tuple[int, int]]:
        pn = self._phonenumbers
        for m in _PHONE.finditer(text):
            candidate = m.group()
            digits = sum(ch.isdigit() for ch in candidate)
            if not 7 <= digits <= 15 or _NOT_PHONE.fullmatch(candidate):
                continue
            # The matcher (not a bare parse) also checks national prefixes and
            # punctuation, as Presidio's phone recognizer does.
            for region in ("ZZ",) if candidate.startswith("+") else self.regions:
                matches = pn.PhoneNumberMatcher(candidate, region, pn.Leniency.VALID)
                found = next(iter(matches), None)
                if found is not None:
                    yield m.start() + found.start, m.start() + found.end
                    break


def _analyzer(extra: tuple[Any, ...], nlp_name: str) -> Any:
    presidio = require("presidio_analyzer", "PiiScanner")
    nlp = require("presidio_analyzer.nlp_engine", "PiiScanner")
    known = require("presidio_analyzer.predefined_recognizers", "PiiScanner")
    enhancers = require("presidio_analyzer.context_aware_enhancers", "PiiScanner")
    tldextract = require("tldextract", "PiiScanner")

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    email = known.EmailRecognizer()
    # Presidio's check calls tldextract's default extractor, which fetches
    # the suffix list over the network; this one only reads the bundled copy.
    email.validate_result = lambda value: offline(value).fqdn != ""
    recognizers = [
        email,
        known.IbanRecognizer(),
        known.CreditCardRecognizer(),
        known.IpRecognizer(),
        known.UsSsnRecognizer(),
        *extra,
    ]
    if nlp_name == "blank":
        require("spacy", "PiiScanner")
        engine = nlp.SlimSpacyNlpEngine(
            models=[{"lang_code": "en", "model_name": "blank:en"}], auto_download=False
        )
    else:
        engine = nlp.NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    registry = presidio.RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
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


def _windows(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    n = len(text)
    for m in _CANDIDATE.finditer(text):
        margin = EMAIL_MARGIN if m.group() == "@" else MARGIN
        start = max(0, m.start() - margin)
        end = min(n, m.end() + margin)
        # widen to whitespace (within bounds) so no token is cut in two
        floor, ceiling = max(0, start - MARGIN), min(n, end + MARGIN)
        while start > floor and not text[start - 1].isspace():
            start -= 1
        while end < ceiling and not text[end].isspace():
            end += 1
        spans.append((start, end))
    return list(_merge(spans))


def _merge(spans: Iterable[tuple[int, int]]) -> Iterable[tuple[int, int]]:
    start = end = -1
    for s, e in sorted(spans):
        if s > end:
            if end > start:
                yield start, end
            start, end = s, e
        else:
            end = max(end, e)
    if end > start:
        yield start, end


def _window_of(starts: list[int], pos: int) -> int:
    return max(0, bisect.bisect_right(starts, pos) - 1)
