"""The shortcuts of the PII and secrets scanners: each claim they skip work on holds.

Every claim is checked on matches that hypothesis generates from the
scanners' own patterns (ASCII, as the claims are made for ASCII text): a
claim that is too strong for some match fails here. That the scanners find
exactly what they found before the shortcuts is checked on a large corpus by
`benchmarks/scanners.py --compare main`.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("detect_secrets")
pytest.importorskip("presidio_analyzer")

from warded.scanners import pii, secrets
from warded.scanners.prefilter import Runs, min_count, min_run, run_table

ASCII = st.characters(min_codepoint=0, max_codepoint=127)
SECRET_RULES = secrets.SecretsScanner().rules
PII_RULES = pii.PiiScanner(min_score=0.0).rules
PATTERNS = [r.pattern for r in SECRET_RULES] + [r.pattern for r in PII_RULES]
DIGITS = frozenset(string.digits)
CHECK = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _ids(patterns: list[re.Pattern[str]]) -> list[str]:
    return [p.pattern[:40] for p in patterns]


@pytest.mark.parametrize("pattern", PATTERNS, ids=_ids(PATTERNS))
@CHECK
@given(data=st.data())
def test_every_match_holds_the_runs_and_counts_claimed(
    pattern: re.Pattern[str], data: st.DataObject
) -> None:
    match = data.draw(st.from_regex(pattern, fullmatch=True, alphabet=ASCII))
    for chars in (*secrets._RUN_CHARS, DIGITS):
        needed = min_run(pattern, chars)
        assert needed == 0 or Runs(match, run_table(chars)).at_least(needed), chars
    for chars in (frozenset(":"), frozenset("."), frozenset("@"), DIGITS):
        assert sum(ch in chars for ch in match) >= min_count(pattern, chars), chars


@pytest.mark.parametrize("source", sorted(secrets.NEEDS), ids=lambda s: s[:40])
@CHECK
@given(data=st.data())
def test_every_match_holds_what_the_secrets_scanner_searches_for_first(
    source: str, data: st.DataObject
) -> None:
    (pattern,) = [r.pattern for r in SECRET_RULES if r.pattern.pattern == source]
    needs = re.compile(secrets.NEEDS[source], pattern.flags)
    match = data.draw(st.from_regex(pattern, fullmatch=True))
    assert needs.search(match) is not None


def test_the_patterns_the_shortcuts_name_are_the_ones_in_use() -> None:
    """A new detect-secrets or Presidio that changes a pattern drops its shortcut: this says so."""
    secret_sources = {r.pattern.pattern for r in SECRET_RULES}
    pii_sources = {r.pattern.pattern for r in PII_RULES}
    assert set(secrets.NEEDS) <= secret_sources
    assert secrets._DISCORD in secret_sources
    assert any(r.anchors is not None for r in SECRET_RULES)
    assert pii_sources >= pii._CHAINS
    assert set(pii._IN_ZEROS) <= pii_sources
    assert set(pii._COLONS) <= pii_sources


@pytest.mark.parametrize("source", sorted(pii._CHAINS), ids=lambda s: s[:40])
@CHECK
@given(data=st.data())
def test_the_digits_of_a_card_or_ssn_lie_in_one_digit_run(source: str, data: st.DataObject) -> None:
    match = data.draw(st.from_regex(re.compile(source), fullmatch=True, alphabet=ASCII))
    zeros = match.translate(pii._ZEROS)
    runs = [m.group().count("0") for m in pii._ASCII_DIGIT_RUN.finditer(zeros)]
    assert max(runs, default=0) >= min_count(re.compile(source), DIGITS)


@pytest.mark.parametrize("source", sorted(pii._IN_ZEROS), ids=lambda s: s[:40])
@CHECK
@given(data=st.data())
def test_an_ssn_or_iban_holds_what_is_searched_for_first_in_the_zeros_copy(
    source: str, data: st.DataObject
) -> None:
    (pattern,) = [r.pattern for r in PII_RULES if r.pattern.pattern == source]
    match = data.draw(st.from_regex(pattern, fullmatch=True, alphabet=ASCII))
    assert pii._IN_ZEROS[source].search(match.translate(pii._ZEROS)) is not None


@pytest.mark.parametrize("source", sorted(pii._COLONS), ids=lambda s: s[:40])
@CHECK
@given(data=st.data())
def test_an_ipv6_match_holds_a_double_colon_or_enough_colons(
    source: str, data: st.DataObject
) -> None:
    match = data.draw(st.from_regex(re.compile(source), fullmatch=True, alphabet=ASCII))
    assert pii._holds(pii._marks(match, 0, len(match)), (0, 0, 0), pii._COLONS[source])


@CHECK
@given(data=st.data())
def test_an_ipv4_shape_holds_the_tail_searched_first(data: st.DataObject) -> None:
    _, ipv4 = pii._ASCII_IP_SHAPE
    match = data.draw(st.from_regex(ipv4, fullmatch=True))
    assert pii._ASCII_IPV4_TAIL.search(match) is not None


WORDS = st.lists(
    st.sampled_from(
        [
            *("phone", "TEL", "téléphone", "Móvil", "hotel", "invoice", "ORDER", "ref", "id"),
            *("no", "#", "-", "_", "/", " ", ": ", "\n", ".", "(", "x7", "ab", "é", "ſ", "K"),
        ]
    ),
    max_size=8,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(before=st.one_of(WORDS, st.text(max_size=32)))
def test_the_word_patterns_read_backwards_agree_with_the_forward_ones(before: str) -> None:
    assert pii._ends_with(pii._PHONE_WORDS_BACK, before) == bool(pii._PHONE_WORDS.search(before))
    assert pii._ends_with(pii._ID_BEFORE_BACK, before) == bool(pii._ID_BEFORE.search(before))


def test_overlapping_gate_literals_are_all_found() -> None:
    """ "acca" and "asia" overlap in "accasia": both occurrences open a window."""
    aws = ("a3t", "abia", "acca", "akia", "asia", "aws")
    hits = list(secrets._hits(aws, "xaccasiax", True, {}))
    assert hits == [(1, 5), (4, 8)]
    digits = tuple(f"{d}:" for d in range(10))
    assert list(secrets._hits(digits, "a1:b22:", False, {})) == [(1, 3), (5, 7)]


def test_a_discord_token_is_found_from_its_dots() -> None:
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAx.GhIjKl.MnOpQrStUvWxYzAbCdEfGhIjKlM"
    text = f"bot token {token} in the config"
    found = secrets.SecretsScanner().scan(text)
    assert [text[f.start : f.end] for f in found if f.kind == "discord_bot_token"] == [token]


def test_runs_are_not_counted_in_non_ascii_text() -> None:
    """Case-blind `[a-z]` also matches the Kelvin sign: no run of ASCII letters is needed."""
    value = "a" * 12 + "\u212a" + "a" * 11
    text = f"cloudant_password = '{value}'"
    found = secrets.SecretsScanner().scan(text)
    assert [(f.kind, text[f.start : f.end]) for f in found] == [("cloudant_credentials", value)]
