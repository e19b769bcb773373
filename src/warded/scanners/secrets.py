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
from collections.abc import Iterable
from dataclasses import dataclass

from warded.scanners._extras import require
from warded.scanners.base import Finding

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

# Cheap necessary conditions for detect-secrets plugins whose own patterns are
# slow to search (no literal start); a plugin not listed here always runs.
GATES: dict[str, str] = {
    "AWSKeyDetector": r"A3T|ABIA|ACCA|AKIA|ASIA|(?i:aws)",
    "ArtifactoryDetector": r"AKC|AP[\dA-F]",
    "CloudantDetector": r"(?i:cl(?:oudant|ou)?[_-]?(?:api)?(?:key|pwd|pw|pass|token)|cloudant\.com)",
    "DiscordBotTokenDetector": r"\.[a-zA-Z\d_-]{6}\.",
    "IbmCosHmacDetector": r"(?i:secret[-_]?(?:access)?[-_]?key)",
    "IbmCloudIamDetector": r"[a-zA-Z0-9_\-]{44}",
    "MailchimpDetector": r"-us\d",
    "SlackDetector": r"(?i:xox|hooks\.slack\.com)",
    "SoftlayerDetector": r"(?i:softlayer|sl[_-]?(?:api)?(?:key|pwd|pass|token))",
    "StripeDetector": r"k_live_",
    "TelegramBotTokenDetector": r"\d{8}:",
}
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
_HEX = frozenset("0123456789abcdefABCDEF")
_PLACEHOLDERS = frozenset(
    {"password", "passwd", "secret", "changeme", "example", "redacted", "none", "null", "true"}
)


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    gate: re.Pattern[str] | None


class SecretsScanner:
    """Finds secrets with detect-secrets' patterns; spans always cover the whole secret.

    `keywords` finds credentials in assignments (`password: "…"`,
    `api_key=…`); `entropy` adds high-entropy tokens of 20+ characters
    (Shannon entropy ≥ 4.5 bits/char, or ≥ 3.0 for hex), which also matches
    hashes and ids, so it is off by default. Raises ImportError naming the
    `scan` extra when detect-secrets is not installed.
    """

    name = NAME

    def __init__(self, *, keywords: bool = True, entropy: bool = False) -> None:
        self.rules = tuple(_catalogue())
        self.keywords = _keyword_rules() if keywords else ()
        self.entropy = entropy

    def scan(self, text: str) -> list[Finding]:
        """Findings (path "") for every secret in `text`, sorted by position."""
        found: set[tuple[str, int, int, float]] = set()
        for rule in self.rules:
            if rule.gate is not None and rule.gate.search(text) is None:
                continue
            for m in rule.pattern.finditer(text):
                span = _full_span(text, m)
                if span is not None:
                    found.add((rule.kind, *span, PROVIDER))
        for start, end in _private_keys(text):
            found.add(("private_key", start, end, PRIVATE_KEY))
        for pattern in self.keywords:
            for m in pattern.finditer(text):
                if _plausible(m.group("v"), quoted=m.groupdict().get("q") is not None):
                    found.add(("secret_keyword", m.start("v"), m.end("v"), KEYWORD))
        if self.entropy:
            for m in _TOKEN.finditer(text):
                if _high_entropy(m.group()):
                    found.add(("high_entropy_string", m.start(), m.end(), ENTROPY))
        return [
            Finding(NAME, kind, "", start, end, score)
            for kind, start, end, score in sorted(found, key=lambda f: (f[1], f[2], f[0]))
        ]


def _catalogue() -> Iterable[_Rule]:
    util = require("detect_secrets.core.plugins.util", "SecretsScanner")
    base = require("detect_secrets.plugins.base", "SecretsScanner")
    plugins = util.get_mapping_from_secret_type_to_class().items()
    for secret_type, cls in sorted(plugins):
        if cls.__name__ in SKIPPED or not issubclass(cls, base.RegexBasedDetector):
            continue
        gate = GATES.get(cls.__name__)
        for pattern in cls.denylist:
            yield _Rule(_slug(secret_type), pattern, re.compile(gate) if gate else None)
    for kind, source in EXTRA_PATTERNS.items():
        yield _Rule(kind, re.compile(source), None)


def _keyword_rules() -> tuple[re.Pattern[str], ...]:
    keyword = require("detect_secrets.plugins.keyword", "SecretsScanner")
    names = "|".join(keyword.DENYLIST)
    head = rf"(?:{names})[\w.-]*[\"'\]]{{0,2}}[ \t]*"
    return (
        re.compile(
            head + r"(?:=|:=|:|=>|==|!=)[ \t]*(?P<q>[\"'`])(?P<v>(?:(?!(?P=q))[^\r\n]){1,256})(?P=q)",
            re.IGNORECASE,
        ),
        re.compile(
            head + r"(?:=|:=|:)[ \t]*(?P<v>[^\s\"'`,;&<>(){}\[\]]{6,256})",
            re.IGNORECASE,
        ),
    )


def _slug(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


def _full_span(text: str, m: re.Match[str]) -> tuple[int, int] | None:
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
    while start > 0 and text[start - 1] in _LEFT:
        start -= 1
    right = _RIGHT.match(text, end)
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
