"""The injection scanner's shortcuts find exactly what the plain searches find.

* `prefilter.guarded`: each kind's pattern (and each guard of a trigger word)
  with a test of its first character, and of its shared word boundary, in
  front. Checked on matches hypothesis generates from every alternative of
  every kind (any text, not only ASCII): the guarded pattern finds the same
  spans, and each match starts with a character `first_chars` names.
* `prefilter.first_words`: the words (or characters) every match of a kind
  starts with, checked on matches hypothesis generates from every alternative,
  inside windows cut anywhere; `injection._starts_in`, which finds them in a
  window, against the spans `finditer` finds there.
* The whole engine against its reference (`InjectionScanner.quick = False`:
  no word index, no first-character or first-word test, each kind's pattern
  as written over its windows), on texts made of the lexicon's own words,
  trigger words, first words and generated matches: the same assessment. The
  reference is read off the same lexicon, so a change of the signals keeps
  the test meaningful.
* `injection._base64_runs`: the base64 candidates found from one translation
  of the text, against the search token by token it replaced.
* The word index (`injection._index`, one Aho-Corasick pass) against a
  whole-word search, and what is read off it instead of a text's word set: the
  rot13 hint's words (every match starts with one standing whole), the tool
  verbs that lead an order (`_present_leads`) against the word set.

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

from warded.scanners import injection, normalize
from warded.scanners.lexicon import LEAD_WORDS, TARGET_WORDS
from warded.scanners.patterns import (
    GUARDS,
    MARKUP,
    PHRASES,
    PLAIN,
    REQUIRES,
    ROT13_HINT,
    TAILED_GUARDS,
    TRIGGERS,
    compile_kinds,
)
from warded.scanners.prefilter import first_chars, first_words, guarded, starts_at_boundary

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
@settings(CHECK, max_examples=10)  # one test per alternative (159): the slowest property
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


@pytest.mark.parametrize("word", sorted(TAILED_GUARDS))
@CHECK
@given(data=st.data())
def test_a_tailed_guard_only_matches_a_text_ending_with_a_non_word_character(
    word: str, data: st.DataObject
) -> None:
    # so `_guarded` does not search a side that ends with a word character
    guard = GUARDS[word]
    matching = data.draw(st.from_regex(guard))
    text = data.draw(
        st.one_of(st.text(max_size=24), st.text(alphabet=" \nnot\u00e9_1a", max_size=24))
    )
    for candidate in (matching, text, matching + text, text + matching):
        if guard.search(candidate) is not None:
            assert not injection._ident_char(candidate[-1])


def test_the_tailed_guards_are_the_negated_verbs_and_the_tool_nouns() -> None:
    assert {"follow", "listen", "tool", "function", "api"} <= TAILED_GUARDS
    assert "anything" not in TAILED_GUARDS  # "^\W+goes" ends anywhere


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


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=" a#", max_size=30))
def test_three_lone_letters_in_one_search_are_either_shape(text: str) -> None:
    found = normalize._THREE_LONE.search(text) is not None
    assert found == (" a a a " in text or " a  a  a " in text)


@settings(max_examples=500, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(["<|", "<", "|", "inst]", "sys>>", "_of_turn>", "x", "é", " ", "inst"]),
        max_size=10,
    )
)
def test_the_required_strings_found_in_one_pass_are_the_strings_in_the_text(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    for kind, needed in REQUIRES.items():
        assert injection._holds_one(text, kind) == any(r in text for r in needed)


# ---------------------------------------------------------------- first words
STARTS = {kind: first_words(pattern) for kind, pattern in KINDS.items()}


def _starts_right(text: str, start: int, end: int, kind: str) -> None:
    """Each match of `kind` in `start`-`end` starts as `first_words` says."""
    known = STARTS[kind]
    assert known is not None
    words, chars = known
    for m in KINDS[kind].finditer(text, start, end):
        at = m.start()
        if text[at] in chars:
            continue
        stop = at
        while stop < end and text[stop].isalpha():
            stop += 1
        assert text[at:stop] in words, (kind, text[at:stop])
        assert at == 0 or not text[at - 1].isalpha()


@settings(CHECK, max_examples=400)
@given(data=st.data())
def test_every_match_starts_with_a_first_word_even_in_a_cut_window(data: st.DataObject) -> None:
    kind, alternative = data.draw(
        st.sampled_from([(k, a) for k, a in ALTERNATIVES if STARTS[k] is not None])
    )
    inner = data.draw(st.from_regex(re.compile(alternative), fullmatch=True))
    around = data.draw(st.sampled_from(["", " ", "x", "\n", "1", "é", ". ", "ab"]))
    text = around + inner + around
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    _starts_right(text, 0, len(text), kind)
    _starts_right(text, start, end, kind)
    if text.isascii():  # where the scanner uses them
        words, chars = STARTS[kind] or (frozenset(), frozenset())
        present = words & injection._words(text)
        spans = []
        cursor = start
        for at in injection._starts_in(text, start, end, words, chars, present):
            found = KINDS[kind].match(text, at, end) if at >= cursor else None
            if found is not None:
                spans.append(found.span())
                cursor = found.end()
        assert spans == [m.span() for m in KINDS[kind].finditer(text, start, end)]


@pytest.mark.parametrize(
    ("source", "words", "chars"),
    [
        (r"\bfoo\W+bar", {"foo"}, set()),
        (r"\be-?mail\b", {"e", "email"}, set()),
        (r"\bdo\W*n[o']?t\b", {"do", "dont", "donot", "don"}, set()),
        (r"\b(?:a|bc)\s|!x|(?:^|(?<=\n))sys:", {"a", "bc", "sys"}, {"!"}),
        (r"[<\[]x", set(), {"<", "["}),
    ],
)
def test_first_words_reads_the_words_off_the_pattern(
    source: str, words: set[str], chars: set[str]
) -> None:
    assert first_words(re.compile(source)) == (frozenset(words), frozenset(chars))


@pytest.mark.parametrize(
    "source",
    [
        r"\w+\W",
        r"\b[a-z]+_",
        r"foo\W",
        r"\bfoo",
        r"\bfoo\w",
        r"(?i)\bfoo\b",
        r"\b(?:x?)*y\b",
        r"[^a]b",
    ],
)
def test_first_words_is_unknown_when_it_cannot_be_read_off(source: str) -> None:
    assert first_words(re.compile(source)) is None


# ---------------------------------------------------------------- the engine vs its reference
_SCANNER = injection.InjectionScanner()
_VOCABULARY = sorted(
    frozenset().union(
        *(words for _, words in TRIGGERS.values()),
        *(s[0] for s in _SCANNER._starts.values()),
        injection.ORDER_VERBS,
        TARGET_WORDS,
        LEAD_WORDS,
    )
)
_TOOLS = ["send_email", "reserve_hotel"]
# the forms of the tools' verbs the word index does not hold (`_lead_places`)
_TOOL_FORMS = injection.InjectionScanner(tools=_TOOLS)._own_leads
_PIECES = st.one_of(
    st.sampled_from(_VOCABULARY),
    st.sampled_from([*_TOOL_FORMS, "hotel", "email", "rot13", "Caesar", "rotate every letter"]),
    st.one_of([st.from_regex(re.compile(alt), fullmatch=True) for _, alt in ALTERNATIVES]),
    st.sampled_from([" ", " ", " ", "\n", ". ", ", ", ": ", "-", "_", "@", "'", "1", "3", "0"]),
    st.sampled_from(["é", "а", "\u200b", "`", "(", "</", "<|", "[", "!", "DAN", "x.com", "+44"]),
)
# prose with some of the lexicon's words, long enough for the word index (`_INDEX_FROM`)
_FILLER = " ".join(["data", "of", "the", "report"] * 260 + _VOCABULARY[::40]) + "\n"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(_PIECES, max_size=30), long=st.booleans(), upper=st.booleans())
def test_the_engine_assesses_as_its_reference(pieces: list[str], long: bool, upper: bool) -> None:
    text = "".join(pieces)
    text = (_FILLER + text) if long else text
    text = text.upper() if upper else text
    reference = injection.InjectionScanner(tools=_TOOLS)
    reference.quick = False
    quick = injection.InjectionScanner(tools=_TOOLS)
    assert quick.assess(text) == reference.assess(text)


# ---------------------------------------------------------------- what the word index stands for
def test_every_rot13_hint_starts_with_one_of_its_words_standing_whole() -> None:
    # so a text whose word index holds none of them cannot mention rot13
    assert first_words(ROT13_HINT) == (injection._ROT13_WORDS, frozenset())
    assert injection._ROT13_WORDS <= injection._INDEXED


def _whole(text: str, word: str) -> list[int]:
    """Where `word` stands whole in `text` (no letter either side), by `str.find`."""
    out = []
    i = text.find(word)
    while i != -1:
        j = i + len(word)
        if not text[i - 1 : i].isalpha() and not text[j : j + 1].isalpha():
            out.append(i)
        i = text.find(word, i + 1)
    return out


@settings(max_examples=25, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=40), long=st.booleans())
def test_the_tool_leads_read_off_the_index_and_the_own_automaton_are_where_they_stand(
    pieces: list[str], long: bool
) -> None:
    text = ((_FILLER if long else "") + "".join(pieces)).lower()
    scanner = injection.InjectionScanner(tools=_TOOLS)
    expected = sorted(i for w in scanner._tool_leads for i in _whole(text, w))
    injection._MEMO.cache, injection._MEMO.index = {}, True
    try:
        assert scanner._lead_places(text) == expected
    finally:
        injection._MEMO.cache = None


# names that overlap themselves and each other, and characters that make them part of an
# identifier
_NAMES = ["send_email", "aa_aa", "a_aa", "email_send", "sendEmail", "get_x_y"]
_NAME_TEXT = st.lists(
    st.sampled_from(["send_email", "aa_aa", "a_a", "email_send", "sendemail", "get_x_y", "_", "a"])
    | st.sampled_from([" ", "(", "`", "1", "é", "\n", "SEND_EMAIL", "x"]),
    max_size=12,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(text=_NAME_TEXT)
def test_the_tool_names_found_in_one_pass_are_the_first_that_stand_whole(text: str) -> None:
    scanner = injection.InjectionScanner(tools=_NAMES)
    expected = set()
    for name in scanner._tool_names:
        for i in range(len(text)):
            j = i + len(name)
            if (
                text.startswith(name, i)
                and not (text[i - 1 : i].isalnum() or text[i - 1 : i] == "_")
                and not (text[j : j + 1].isalnum() or text[j : j + 1] == "_")
            ):
                expected.add((i, j))
                break
    assert sorted(scanner._named_tools(text)) == sorted(expected)
