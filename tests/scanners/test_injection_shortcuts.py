"""The injection scanner's shortcuts find exactly what the plain searches find.

* `prefilter.guarded`: each kind's pattern (and each guard of a trigger word)
  with a test of its first character, and of its shared word boundary, in
  front. Checked on matches hypothesis generates from every alternative of
  every kind (any text, not only ASCII): the guarded pattern finds the same
  spans, and each match starts with a character `first_chars` names.
* `injection._base64_runs`: the base64 candidates found from one translation
  of the text, against the search token by token it replaced.

That the whole scanner finds what main's finds on the corpora is checked by
`benchmarks/injection_heldout.py --same`.
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warded.scanners import injection
from warded.scanners.patterns import (
    GUARDS,
    MARKUP,
    PHRASES,
    PLAIN,
    ROT13_HINT,
    compile_kinds,
)
from warded.scanners.prefilter import first_chars, guarded, starts_at_boundary

TABLES = {**PHRASES, **MARKUP, **PLAIN}
KINDS = compile_kinds(TABLES)
# every alternative of every kind, with the kind's whole pattern
ALTERNATIVES = [(kind, alt) for kind, alts in TABLES.items() for alt in alts]
CHECK = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text)]


@pytest.mark.parametrize(("kind", "alternative"), ALTERNATIVES, ids=lambda x: str(x)[:40])
@CHECK
@given(data=st.data())
def test_a_guarded_kind_finds_what_the_kind_finds(
    kind: str, alternative: str, data: st.DataObject
) -> None:
    whole = KINDS[kind]
    quick = guarded(whole)
    inner = data.draw(st.from_regex(re.compile(alternative), fullmatch=True))
    around = data.draw(st.sampled_from(["", " ", "x", "\n", "1", "é", ". "]))
    text = around + inner + around
    assert _spans(quick, text) == _spans(whole, text)
    first = first_chars(whole)
    if first is not None:
        assert all(text[start] in first for start, _ in _spans(whole, text))


@pytest.mark.parametrize("word", sorted(GUARDS))
@CHECK
@given(data=st.data())
def test_a_guarded_trigger_guard_finds_what_the_guard_finds(word: str, data: st.DataObject) -> None:
    guard = GUARDS[word]
    before = data.draw(st.from_regex(guard))
    assert guard.search(before) is not None
    assert injection._GUARDS[word].search(before) is not None
    text = data.draw(st.text(max_size=24))
    assert bool(injection._GUARDS[word].search(text)) == bool(guard.search(text))


@CHECK
@given(data=st.data())
def test_the_guarded_rot13_hint_finds_what_the_hint_finds(data: st.DataObject) -> None:
    text = data.draw(st.one_of(st.from_regex(ROT13_HINT), st.text(max_size=30)))
    assert _spans(injection._ROT13_HINT, text) == _spans(ROT13_HINT, text)


def test_the_guards_are_in_use_and_some_add_a_shared_word_boundary() -> None:
    scanner = injection.InjectionScanner()
    for table, source in ((scanner._phrases, PHRASES), (scanner._plain, PLAIN)):
        for kind, pattern in table.items():
            assert pattern.pattern == guarded(compile_kinds(source)[kind]).pattern
    assert scanner._phrases["instruction_override"].pattern.startswith(r"\b(?=[")
    assert not scanner._markup["role_marker"].pattern.startswith(r"\b")  # starts with a line
    # `re` finds "<|" and "[" faster by itself: left alone
    plain = compile_kinds(MARKUP)["chat_template"]
    assert scanner._markup["chat_template"].pattern == plain.pattern


def test_the_guards_on_the_benchmark_texts_and_their_variants() -> None:
    """Every kind, guarded and not, on long real texts (folded as the scanner folds them)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import scanners as bench  # benchmarks/scanners.py: its sample texts

    texts = [bench.sample_text(n) for n in (1_000, 10_000)]
    texts += [t.upper() for t in texts] + [t.replace("e", "3").replace(" ", "  ") for t in texts]
    for text in texts:
        view = injection.dehyphenate(injection.fold(text))
        for folded in (view.text, injection.deleet(view).text, text):
            for pattern in KINDS.values():
                assert _spans(guarded(pattern), folded) == _spans(pattern, folded)


@pytest.mark.parametrize(
    ("source", "first"),
    [
        (r"a?b", "ab"),
        (r"(?<=x)\bfoo|bar", "fb"),
        (r"(?:x|)y", "xy"),
        (r"[a-c]+z", "abc"),
        (r"é", "é"),
    ],
)
def test_first_chars_names_what_a_match_can_start_with(source: str, first: str) -> None:
    assert first_chars(re.compile(source)) == frozenset(first)


@pytest.mark.parametrize("source", [r"a*", r"\w+", r"[^a]b", r".x", r"(?i)abc", r"()\1a"])
def test_first_chars_is_unknown_when_it_cannot_be_read_off(source: str) -> None:
    assert first_chars(re.compile(source)) is None
    assert guarded(re.compile(source)).pattern == source


def test_a_boundary_is_only_shared_when_every_alternative_has_one() -> None:
    assert starts_at_boundary(re.compile(r"(?:\bfoo)|(?:\bbar\b)"))
    assert not starts_at_boundary(re.compile(r"(?:\bfoo)|(?:bar)"))
    mixed = guarded(re.compile(r"(?:\bfoo)|(?:bar)"))
    assert _spans(mixed, "xbar foo") == [(1, 4), (5, 8)]
    assert _spans(guarded(re.compile(r"\bfoo|\bbar")), "xbar foo") == [(5, 8)]


def test_a_pattern_re_skips_ahead_for_is_left_alone() -> None:
    for source in (r"<\|(?:a|b)", r"[<\[]x", r"(?:<a)|(?:\[b)"):
        assert guarded(re.compile(source)).pattern == source


def _base64_by_token(text: str) -> list[tuple[int, int]]:
    """The search `_base64_runs` replaced: whitespace-separated tokens of 20 or more."""
    out: list[tuple[int, int]] = []
    cursor = 0
    for token in [t for t in text.split() if len(t) >= 20]:
        at = text.find(token, cursor)
        cursor = at + len(token)
        out += [(at + m.start(), at + m.end()) for m in injection._BASE64.finditer(token)]
    return out


BASE64_TEXT = st.lists(
    st.one_of(
        st.sampled_from([" ", "\n", "\t", "=", "==", "===", ".", "é", "\u2003", "\x1c", "%", ":"]),
        st.text(alphabet="aZ09+/_-", min_size=1, max_size=25),
        st.binary(min_size=10, max_size=40).map(lambda b: base64.b64encode(b).decode()),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=BASE64_TEXT)
def test_base64_runs_are_the_tokens_runs(text: str) -> None:
    assert [m.span() for m in injection._base64_runs(text)] == _base64_by_token(text)


SNAKE_TEXT = st.lists(
    st.sampled_from(["_", "`", "(", " ", "\n", "a", "b1", "get_x", "`do_it`", "f (", "é", "__"]),
    max_size=16,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=st.one_of(SNAKE_TEXT, st.text(max_size=40)))
def test_snake_case_calls_found_at_their_first_characters_are_all_of_them(text: str) -> None:
    found = injection._matches_at(injection._SNAKE_CALL, text, injection._SNAKE_FIRST)
    assert [m.span() for m in found] == _spans(injection._SNAKE_CALL, text)
    plain = injection._matches_at(injection._SNAKE_CALL, text, None)
    assert [m.span() for m in plain] == _spans(injection._SNAKE_CALL, text)
