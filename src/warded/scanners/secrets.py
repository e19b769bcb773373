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

import functools
import math
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from warded.scanners._extras import require
from warded.scanners.base import Finding, merge_intervals
from warded.scanners.prefilter import Runs, min_run, run_table

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
# Discord bot tokens, `[MNO]` + 23-25 + "." + 6 + "." + 27 characters, are searched
# from each "." that has six token characters and another "." after it: a match
# starts at most 26 characters before its first "." and ends 35 after it. The
# pattern has no look-around or anchor, so a window holding every match it
# could make finds exactly what the whole text does. Only for this exact pattern.
_DISCORD = r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}"
_DISCORD_DOTS = re.compile(r"\.(?=[a-zA-Z\d_-]{6}\.)")
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


# Every match of a rule in an ASCII text holds a run of token characters, and
# one of letters, at least as long as prefilter.min_run says: a text without
# runs that long skips the rule. Tested for the gated rules only (the others
# start with a literal, which the regex engine finds about as fast).
_RUN_CHARS = (
    frozenset(string.ascii_letters + string.digits + "_-+/="),
    frozenset(string.ascii_letters),
)
_RUN_TABLES = tuple(run_table(chars) for chars in _RUN_CHARS)
_SHORT_RUN = 12  # runs this short are in nearly every text: not worth testing for

# What a match of these patterns must hold, searched faster than the pattern
# itself (a literal starts it): a text where it is missing skips the rule.
NEEDS: dict[str, str] = {
    r'(?:\s|=|:|"|^)AKC[a-zA-Z0-9]{10,}(?:\s|"|$)': r"AKC[a-zA-Z0-9]{10}",
    r'(?:\s|=|:|"|^)AP[\dABCDEF][a-zA-Z0-9]{8,}(?:\s|"|$)': r"AP[\dABCDEF][a-zA-Z0-9]{8}",
    r"\d{8,10}:[0-9A-Za-z_-]{35}": r":(?<=\d{8}:)[0-9A-Za-z_-]{35}",
    r"(?:https?\:\/\/)[\w\-]+\:([0-9a-f]{64})\@[\w\-]+\.cloudant\.com": r":[0-9a-f]{64}@",
    r"(?:https?\:\/\/)[\w\-]+\:([a-z]{24})\@[\w\-]+\.cloudant\.com": r":[a-z]{24}@",
}


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    gate: Gate | None = None
    score: float = PROVIDER
    anchors: re.Pattern[str] | None = None  # instead of the gate's literals
    needs: re.Pattern[str] | None = None  # NEEDS


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
        self.runs = tuple(
            tuple(
                n if n >= _SHORT_RUN and r.gate is not None else 0
                for n in (min_run(r.pattern, chars) for chars in _RUN_CHARS)
            )
            for r in self.rules
        )
        self.keywords = _Keywords() if keywords else None
        self.entropy = entropy

    def scan(self, text: str, *, cuts: Sequence[int] = ()) -> list[Finding]:
        """Findings (path "") for every secret in `text`, sorted by position.

        With `cuts` (where `scan_value` joined sibling strings), only secrets
        whose match crosses a cut are reported, and a span grows over
        adjacent token characters only within the strings the match touches.
        """
        found: set[tuple[str, int, int, float]] = set()
        ascii_ = text.isascii()
        low = text.lower() if ascii_ else text.translate(_ASCII_LOWER)
        runs = [Runs(text, table) for table in _RUN_TABLES] if ascii_ else []  # else: untested
        anchors = _Anchors(text, low)
        within = _Within(cuts, len(text))
        for rule, needed in zip(self.rules, self.runs, strict=True):
            if any(n and not r.at_least(n) for n, r in zip(needed, runs, strict=False)):
                continue  # no run of characters long enough for a match
            if rule.needs is not None and rule.needs.search(text) is None:
                continue
            for m in _matches(rule, text, anchors):
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
            if pattern.pattern == _DISCORD and pattern.flags == re.UNICODE:
                yield _Rule(_slug(secret_type), pattern, ((), False, 26, 34), anchors=_DISCORD_DOTS)
            else:
                needs = NEEDS.get(pattern.pattern)
                yield _Rule(
                    _slug(secret_type),
                    pattern,
                    GATES.get(cls.__name__),
                    needs=re.compile(needs, pattern.flags) if needs is not None else None,
                )
    for kind, source in EXTRA_PATTERNS.items():
        yield _Rule(kind, re.compile(source), EXTRA_GATES.get(kind))


def _matches(rule: _Rule, text: str, anchors: _Anchors) -> Iterable[re.Match[str]]:
    if rule.gate is None:
        yield from rule.pattern.finditer(text)
        return
    for start, end in anchors.windows(rule.gate, rule.anchors):
        yield from rule.pattern.finditer(text, start, end)


class _Anchors:
    """The windows of one text around its gates' literals, each literal searched once."""

    def __init__(self, text: str, low: str) -> None:
        self.text, self.low = text, low
        self.found: dict[tuple[str, bool], list[int]] = {}
        self.cache: dict[Gate, list[tuple[int, int]]] = {}

    def windows(self, gate: Gate, anchors: re.Pattern[str] | None) -> list[tuple[int, int]]:
        """Merged (start, end) within `before` and `after` characters of each literal."""
        windows = self.cache.get(gate)
        if windows is None:
            literals, lowered, before, after = gate
            hits = (
                ((m.start(), m.end()) for m in anchors.finditer(self.text))
                if anchors is not None
                else _hits(literals, self.low if lowered else self.text, lowered, self.found)
            )
            n = len(self.text)
            spans = [(max(0, start - before), min(n, end + after)) for start, end in hits]
            windows = self.cache[gate] = merge_intervals(spans)
        return windows


def _hits(
    literals: tuple[str, ...], hay: str, lowered: bool, found: dict[tuple[str, bool], list[int]]
) -> Iterable[tuple[int, int]]:
    """(start, end) of every occurrence of each literal in `hay`, overlaps included.

    Where a literal is a prefix of another, only the longer one's occurrence is
    reported at a position both start at; its window holds the shorter one's.
    """
    if len(literals) > 1 and all(len(lit) == 2 and lit[1] == literals[0][1] for lit in literals):
        # "0:" … "9:": one search for the shared last character
        heads, tail = {lit[0] for lit in literals}, literals[0][1]
        i = hay.find(tail, 1)
        while i != -1:
            if hay[i - 1] in heads:
                yield i - 1, i + 1
            i = hay.find(tail, i + 1)
        return
    if len(literals) > 1 and len({lit[0] for lit in literals}) == 1:
        # "a3t", "abia", … "aws": one search for them all, longest first
        pattern = _alternation(literals)
        pos = 0
        while (m := pattern.search(hay, pos)) is not None:
            yield m.span()
            pos = m.start() + 1
        return
    for literal in literals:
        key = (literal, lowered)
        starts = found.get(key)
        if starts is None:
            starts = found[key] = []
            i = hay.find(literal)
            while i != -1:
                starts.append(i)
                i = hay.find(literal, i + 1)
        yield from ((i, i + len(literal)) for i in starts)


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


@functools.cache
def _alternation(literals: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(lit) for lit in sorted(literals, key=len, reverse=True)))


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
    if "PRIVATE KEY" not in text and "PuTTY-User-Key-File-" not in text:
        return  # each of _KEY_BEGIN's two forms holds one of these
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
