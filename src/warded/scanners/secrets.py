"""Secrets: API keys, tokens, private keys, credentials in assignments.

The pattern catalogue is detect-secrets' regex plugins (`pip install
'warded[scan]'`), applied here rather than through detect-secrets' own scan,
because the values it reports can be partial (a capture group holding only
a token's prefix, a lazy pattern that stops before a JWT's signature, a
fixed-length pattern shorter than the real key): masking those would leave
the rest of the secret in place. Every finding here is the full span:

* a pattern whose last capture group ends the match (a value after
  `key = "…"`) is reduced to that value; otherwise the whole match counts;
* quotes, blanks and assignment marks at either edge are trimmed;
* the span then grows over adjacent token characters (`A-Za-z0-9_-+/`, and
  `=` to the right), so a longer real key is masked whole;
* a private key is one span from its BEGIN line through its END line, or to
  the end of the string when the END line is missing.

Scores: 1.0 a private-key block; 0.9 a provider-format token (a
detect-secrets plugin or one of `EXTRA_PATTERNS`); 0.5 a credential in an
assignment (`password = "…"`, detect-secrets' keyword list); 0.3 a
high-entropy token (off by default, `entropy=True`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from warded.scanners._extras import require
from warded.scanners.base import Finding, merge_intervals

NAME = "secrets"
PROVIDER = 0.9
PRIVATE_KEY = 1.0
KEYWORD = 0.5
ENTROPY = 0.3
BASE64_ENTROPY = 4.5  # bits per character; detect-secrets' default limits
HEX_ENTROPY = 3.0

# Formats detect-secrets 1.5 does not know, in the same spirit: a fixed prefix.
EXTRA_PATTERNS: dict[str, str] = {
    "anthropic_api_key": r"sk-ant-[A-Za-z0-9_\-]{20,}",
    "openai_project_key": r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}",
    "google_api_key": r"AIza[0-9A-Za-z_\-]{35}",
    "github_fine_grained_token": r"github_pat_[A-Za-z0-9_]{22,}",
    "huggingface_token": r"hf_[A-Za-z]{30,}",
    "authorization_header": (
        r"(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:bearer|basic|token)\s+([A-Za-z0-9\-._~+/]{12,}=*)"
    ),
}

# Where the slower detect-secrets patterns can match: near one of these
# literals (lowercase, found in the lowercased text, or as written when the
# plugin's pattern is case-sensitive), within (before, after) characters of it.
# A plugin not listed here is searched over the whole text.
_ASSIGN = ("key", "pwd", "pw", "pass", "token")
Gate = tuple[tuple[str, ...], bool, int, int]
GATES: dict[str, Gate] = {
    "AWSKeyDetector": (("a3t", "abia", "acca", "akia", "asia", "aws"), True, 2, 128),
    "ArtifactoryDetector": (("AKC", "AP"), False, 2, 128),
    "CloudantDetector": ((*_ASSIGN, "cloudant"), True, 16, 100),
    "IbmCosHmacDetector": (("secret",), True, 20, 80),
    "IbmCloudIamDetector": (_ASSIGN, True, 24, 80),
    "MailchimpDetector": (("-us",), True, 40, 8),
    "SlackDetector": (("xox", "hooks.slack.com"), True, 16, 512),  # "https://" comes first
    "SoftlayerDetector": ((*_ASSIGN, "softlayer"), True, 16, 100),
    "StripeDetector": (("k_live_",), True, 2, 128),
    "TelegramBotTokenDetector": (tuple(f"{d}:" for d in range(10)), False, 12, 40),
}
EXTRA_GATES: dict[str, Gate] = {"authorization_header": (("authorization",), True, 2, 256)}
SKIPPED = frozenset(
    {
        "IPPublicDetector",  # an address is personal data at most: PiiScanner
        "PrivateKeyDetector",  # headers only: replaced by the block rule
        "KeywordDetector",  # per file type: replaced by the assignment rules
        "Base64HighEntropyString",
        "HexHighEntropyString",
    }
)

_LEFT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/")
_RIGHT = re.compile(r"[A-Za-z0-9_\-+/=]*")
_EDGE = " \t\r\n\"'`=:,;"
_KEY_BEGIN = re.compile(r"-{3,}\s*BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?|PuTTY-User-Key-File-\d")
_KEY_END = re.compile(r"END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?[ \t]*-*|Private-MAC:[^\r\n]*")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{20,}")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdefABCDEF")
_PLACEHOLDERS = frozenset(
    {"password", "passwd", "secret", "changeme", "example", "redacted", "none", "null", "true"}
)


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    gate: Gate | None = None
    score: float = PROVIDER


class SecretsScanner:
    """Finds secrets with detect-secrets' patterns; spans always cover the whole secret.

    `keywords` finds credentials in assignments (`password: "…"`,
    `api_key=…`); `entropy` adds high-entropy tokens of 20+ characters
    (Shannon entropy ≥ 4.5 bits/char, or ≥ 3.0 for hex), which also matches
    hashes and ids, so it is off by default. Raises ImportError naming the
    `scan` extra when detect-secrets is not installed.
    """

    name = NAME
    joins_siblings = True  # a token split across two arguments is still one token

    def __init__(self, *, keywords: bool = True, entropy: bool = False) -> None:
        self.rules = tuple(_catalogue())
        self.keywords = _Keywords() if keywords else None
        self.entropy = entropy

    def scan(self, text: str, *, cuts: Sequence[int] = ()) -> list[Finding]:
        """Findings (path "") for every secret in `text`, sorted by position.

        With `cuts` (where `scan_value` joined sibling strings), only secrets
        whose match crosses a cut are reported, and a span grows over
        adjacent token characters only within the strings the match touches.
        """
        found: set[tuple[str, int, int, float]] = set()
        low = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
        cache: dict[Gate, list[tuple[int, int]]] = {}
        within = _Within(cuts, len(text))
        for rule in self.rules:
            for m in _matches(rule, text, low, cache):
                bounds = within(*m.span())
                span = _full_span(text, m, bounds) if bounds is not None else None
                if span is not None:
                    found.add((rule.kind, *span, rule.score))
        for start, end in _private_keys(text):
            if within(start, end) is not None:
                found.add(("private_key", start, end, PRIVATE_KEY))
        if self.keywords is not None:
            for start, end in self.keywords.find(text, low):
                if within(start, end) is not None:
                    found.add(("secret_keyword", start, end, KEYWORD))
        if self.entropy:
            for m in _TOKEN.finditer(text):
                if _high_entropy(m.group()) and within(*m.span()) is not None:
                    found.add(("high_entropy_string", m.start(), m.end(), ENTROPY))
        return [
            Finding(NAME, kind, "", start, end, score)
            for kind, start, end, score in sorted(found, key=lambda f: (f[1], f[2], f[0]))
        ]


class _Within:
    """Without cuts, every match and the whole text; with cuts, crossing matches and their parts."""

    def __init__(self, cuts: Sequence[int], length: int) -> None:
        self.cuts = sorted(cuts)
        self.length = length

    def __call__(self, start: int, end: int) -> tuple[int, int] | None:
        if not self.cuts:
            return 0, self.length
        crossed = [c for c in self.cuts if start < c < end]
        if not crossed:
            return None
        lo = max((c for c in self.cuts if c <= start), default=0)
        hi = min((c for c in self.cuts if c >= end), default=self.length)
        return lo, hi


def _catalogue() -> Iterable[_Rule]:
    util = require("detect_secrets.core.plugins.util", "SecretsScanner")
    base = require("detect_secrets.plugins.base", "SecretsScanner")
    plugins = util.get_mapping_from_secret_type_to_class().items()
    for secret_type, cls in sorted(plugins):
        if cls.__name__ in SKIPPED or not issubclass(cls, base.RegexBasedDetector):
            continue
        for pattern in cls.denylist:
            yield _Rule(_slug(secret_type), pattern, GATES.get(cls.__name__))
    for kind, source in EXTRA_PATTERNS.items():
        yield _Rule(kind, re.compile(source), EXTRA_GATES.get(kind))


def _matches(
    rule: _Rule, text: str, low: str, cache: dict[Gate, list[tuple[int, int]]]
) -> Iterable[re.Match[str]]:
    if rule.gate is None:
        yield from rule.pattern.finditer(text)
        return
    windows = cache.get(rule.gate)
    if windows is None:
        windows = cache[rule.gate] = _windows(rule.gate, text, low)
    for start, end in windows:
        yield from rule.pattern.finditer(text, start, end)


def _windows(gate: Gate, text: str, low: str) -> list[tuple[int, int]]:
    literals, lowered, before, after = gate
    hay = low if lowered else text
    spans: list[tuple[int, int]] = []
    for literal in literals:
        i = hay.find(literal)
        while i != -1:
            spans.append((max(0, i - before), min(len(text), i + len(literal) + after)))
            i = hay.find(literal, i + 1)
    return merge_intervals(spans)


class _Keywords:
    """`name = value` where the name is on detect-secrets' keyword list (`api_key`, `password`).

    Searched from each occurrence of a keyword's core (the text's lowercase
    copy has the same length), so the cost follows the number of keywords.
    """

    CORES = ("key", "pass", "pwd", "secret", "contrase")

    def __init__(self) -> None:
        keyword = require("detect_secrets.plugins.keyword", "SecretsScanner")
        self.names = re.compile("|".join(keyword.DENYLIST))
        rest = r"[\w.-]*[\"'\]]{0,2}[ \t]*"
        self.quoted = re.compile(
            rest
            + r"(?:=|:=|:|=>|==|!=)[ \t]*(?P<q>[\"'`])(?P<v>(?:(?!(?P=q))[^\r\n]){1,256})(?P=q)"
        )
        self.bare = re.compile(rest + r"(?:=|:=|:)[ \t]*(?P<v>[^\s\"'`,<>(){}\[\]]{6,256})")

    def find(self, text: str, low: str) -> Iterable[tuple[int, int]]:
        for core in self.CORES:
            i = low.find(core)
            while i != -1:
                after = i + len(core)
                name = self.names.search(low, max(0, i - 9), after + 4)
                if name is not None and name.start() <= i < name.end():
                    m = self.quoted.match(low, after) or self.bare.match(low, after)
                    if m is not None:
                        start, end = m.span("v")
                        if _plausible(text[start:end], quoted=m.re is self.quoted):
                            yield start, end
                i = low.find(core, after)


def _slug(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


def _full_span(text: str, m: re.Match[str], bounds: tuple[int, int]) -> tuple[int, int] | None:
    lo, hi = bounds
    start, end = m.span()
    for g in range(m.re.groups, 0, -1):
        gs, ge = m.span(g)
        if ge > gs >= 0:
            if gs > start and end - ge <= 2:
                start, end = gs, ge
            break
    while start < end and text[start] in _EDGE:
        start += 1
    while end > start and text[end - 1] in _EDGE:
        end -= 1
    if start == end:
        return None
    while start > lo and text[start - 1] in _LEFT:
        start -= 1
    right = _RIGHT.match(text, end, hi)
    return start, right.end() if right else end


def _private_keys(text: str) -> Iterable[tuple[int, int]]:
    pos = 0
    while (begin := _KEY_BEGIN.search(text, pos)) is not None:
        end = _KEY_END.search(text, begin.end())
        stop = end.end() if end is not None else len(text)
        yield begin.start(), stop
        pos = stop


def _plausible(value: str, *, quoted: bool) -> bool:
    v = value.strip()
    if len(v) < 4 or v.lower() in _PLACEHOLDERS or v[0] in "$%{<(*" or len(set(v)) < 3:
        return False
    if quoted:
        return True
    return len(v) >= 16 or not v.isalpha()


def _high_entropy(token: str) -> bool:
    counts: dict[str, int] = {}
    for ch in token:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(token)
    bits = -sum(c / n * math.log2(c / n) for c in counts.values())
    return bits >= (HEX_ENTROPY if set(token) <= _HEX else BASE64_ENTROPY)
