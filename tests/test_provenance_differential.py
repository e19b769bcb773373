"""The provenance index against a straightforward reference, on random sessions (G18).

The index (`warded.provenance.Index`) answers from positional indexes, a memo
extended as sources are added, floors moved past evicted sources and groups
rebuilt when mostly dead. Here every answer it gives while a random session
grows and evicts is compared with two others: an index built from scratch from
the live sources at that moment, and `reference`, which reads the matching
rules of the module docstring literally and scans every live string, with
the normalization written plainly as regular expressions (`chunks`, `loose`
and the URLs in a string take faster paths in the module; they are compared
with these on random strings too).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warded.model import Remembered, Source
from warded.provenance import (
    _JOIN,
    FOLD,
    MAX_PROBES,
    MIN_PART,
    UNTRUSTED,
    Index,
    Indexes,
    _as_url,
    _host,
    _hosts,
    _spellings,
    _Tail,
    _urls,
    chunks,
    loose,
    strict,
)
from warded.scanners.normalize import fold

GROUPED = re.compile(r"[0-9a-z+]+")
CHUNK = re.compile(r"[\w@+\-~%](?:[\w@.+\-~%]*[\w@+\-~%])?")
ALNUM_ONLY = re.compile(r"[\W_]+")
URL = re.compile(r"[a-z][a-z0-9+.\-]*://[^\s\"'<>`]+")


def plain_chunks(normalized: str) -> list[str]:
    return CHUNK.findall(normalized)


def plain_loose(normalized: str) -> str:
    return ALNUM_ONLY.sub("", fold(normalized).text)


def plain_hosts(normalized: str) -> list[str]:
    found: list[str] = []
    for url in URL.findall(normalized):
        host = _host(url)
        if host:
            found.extend(_spellings(host))
    return found


# -- the reference ------------------------------------------------------------------------


def _occurs(cs: list[str], strings: list[list[str]]) -> bool:
    """Whether the chunk sequence occurs contiguous in one string, and either is that
    whole string or has at least MIN_PART characters."""
    if not cs:
        return False
    m = len(cs)
    long_enough = sum(len(c) for c in cs) >= MIN_PART
    for s in strings:
        for p in range(len(s) - m + 1):
            if s[p : p + m] == cs and (long_enough or (p == 0 and p + m == len(s))):
                return True
    return False


def _joined(cs: list[str], strings: list[list[str]]) -> bool:
    """Trusted sources: a grouped number (chunks of ASCII letters, digits and `+`,
    at least four digits) matches written together or in groups of up to _JOIN."""
    if not cs or not all(GROUPED.fullmatch(c) for c in cs):
        return False
    joined = "".join(cs)
    if sum(ch.isdigit() for ch in joined) < 4:
        return False
    for s in strings:
        for i in range(len(s)):
            for j in range(i + 2, min(i + _JOIN, len(s)) + 1):
                run = s[i:j]
                if not all(GROUPED.fullmatch(c) for c in run):
                    break
                if "".join(run) == joined:
                    return True
    return len(cs) > 1 and _occurs([joined], strings)


def _loosely(key: str, keys: list[str]) -> bool:
    if len(key) >= MIN_PART:
        return any(key in k for k in keys)
    return bool(key) and key in keys


def reference(value: str, live: list[Source], overflowed: bool) -> frozenset[str]:
    """The sources and labels of `value`, by the module docstring's rules, scanning."""
    normalized = strict(value)
    url = _as_url(normalized)
    if url is not None and url[1]:
        normalized = url[0]
    cs, key = plain_chunks(normalized), plain_loose(normalized)
    host = None if url is None or url[1] else (plain_chunks(url[0]), plain_loose(url[0]))
    groups: dict[tuple[str, tuple[str, ...]], list[Source]] = {}
    for source in live:
        groups.setdefault((source.name, tuple(sorted(source.labels))), []).append(source)
    tags: set[str] = set()
    for (name, labels), sources in groups.items():
        strings: list[list[str]] = []
        keys: list[str] = []
        for source in sources:
            for leaf in source.leaves:
                n = strict(leaf)
                strings.append(plain_chunks(n))
                strings.extend(plain_chunks(h) for h in plain_hosts(n))
                keys.append(plain_loose(n))
        trusted = not name.startswith("tool:")
        if _occurs(cs, strings) or (trusted and _joined(cs, strings)):
            tags |= {name, *labels}
        elif labels and (
            _loosely(key, keys)
            or (host is not None and (_occurs(host[0], strings) or _loosely(host[1], keys)))
        ):
            tags |= set(labels)
    if overflowed:
        tags.add(UNTRUSTED)
    return frozenset(tags)


# -- random sessions ----------------------------------------------------------------------

TOKENS = [
    "GB33BUKB20201555555555",
    "GB33 BUKB 2020 1555 5555 55",
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "de89.3704.0044",
    "+44 20 7946 0958",
    "1234",
    "2020",
    "55",
    "bob@example.com",
    "Bob@Example.com.",
    "attacker@evil.com",
    "https://evil.com/update.exe",
    "https://news.com",
    "news.com",
    "http://xn--80ak6aa92e.com/",
    "https://good.com@evil.net/login",
    "http://./path",
    "https://EVIL.com./x?d=1",
    "doc-4411.pdf",
    "a",
    "pay",
    "note",
    "the",
    "invoice",
    "Paris",
    "xxxxx",
    "abab",
    "аpple.com",
    "apple.com",
    "app\u200ble.com",
    "ＧＢ３３ＢＵＫＢ",
    "DE89%2533%2537",
    "Ε89",
    "%41%42%43de",
    "ref:DE89",
]
SEPARATORS = [" ", " ", " ", ", ", ". ", "-", "\n", "/", "", "\u200b"]
KINDS = [
    ("user", ()),
    ("approved", ()),
    ("tool:files", ()),
    ("tool:inbox", ("untrusted",)),
    ("tool:inbox", ()),
    ("tool:web", ("pii", "untrusted")),
]


def text(rng: random.Random, words: int) -> str:
    out = []
    for _ in range(words):
        out.append(rng.choice(TOKENS))
        out.append(rng.choice(SEPARATORS))
    return "".join(out)


def respell(rng: random.Random, value: str) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return value.upper()
    if kind == 1:
        return " ".join(value)
    if kind == 2 and value:
        k = rng.randrange(len(value))
        return value[:k] + rng.choice(["\u200b", "-", " ", "%20"]) + value[k:]
    if kind == 3:
        return value.replace("a", "а").replace("e", "е")  # Cyrillic
    return value + rng.choice(["", ".", "x", "/"])


def a_value(rng: random.Random, live: list[Source], asked: list[str]) -> str:
    strings = [leaf for s in live for leaf in s.leaves]
    kind = rng.randrange(7)
    if kind == 0 and asked:
        return rng.choice(asked)  # asked before: its memo is reused or extended
    if kind in (1, 2) and strings:
        s = rng.choice(strings)
        i = rng.randrange(len(s))
        return s[i : i + rng.randrange(1, 30)]  # a cut of what was remembered
    if kind == 3 and strings:
        return respell(rng, rng.choice(strings)[: rng.randrange(1, 40)])
    if kind == 4:
        return respell(rng, rng.choice(TOKENS))
    if kind == 5:
        return rng.choice(TOKENS) + rng.choice(SEPARATORS) + rng.choice(TOKENS)
    return rng.choice(TOKENS)


def session(
    rng: random.Random,
    steps: int,
    words: Callable[[], int],
    window: int,
    check: Callable[[list[Source], bool, list[str]], None],
) -> None:
    """Grow a session source by source (one or two at a time), evicting the oldest
    beyond `window`, through `Indexes` as the gate does; `check` after each step."""
    made: list[Source] = []
    first = 1
    overflowed = False
    asked: list[str] = []
    indexes = Indexes()

    def read(after: int) -> Remembered:
        entries = tuple((n, made[n - 1]) for n in range(max(first, after + 1), len(made) + 1))
        return Remembered(len(made), overflowed, first, entries)

    indexes.provenance("s", 0, read, {}, [])
    while len(made) < steps:
        count = rng.choice((1, 1, 1, 2))
        for _ in range(count):
            name, labels = rng.choice(KINDS)
            leaves = tuple(text(rng, words()) for _ in range(rng.randrange(1, 3)))
            if asked and rng.random() < 0.3:  # what was asked before, now written here
                leaves += (rng.choice(SEPARATORS).join([text(rng, 2), rng.choice(asked)]),)
            made.append(Source(name, labels, leaves))
        if len(made) - first + 1 > window:
            first = len(made) - window + 1
            overflowed = True
        added = tuple((n, made[n - 1]) for n in range(len(made) - count + 1, len(made) + 1))
        indexes.advance("s", Remembered(len(made), overflowed, first, added), count)
        live = made[first - 1 :]
        values = [a_value(rng, live, asked) for _ in range(6)]
        asked.extend(values)
        for value in values:
            got = indexes.provenance("s", len(made), read, {"v": value}, ["v"])["v"]
            check(live, overflowed, [value, *got])


# how much scanning makes the tail be filed in the groups: at every lookup (the
# groups answer everything), often (groups and tail both), as shipped, never
# (the tail answers everything, its floors moved past evicted sources)
FOLDS = (0, 2, FOLD, 10**9)


@pytest.mark.requirement("G18")
@pytest.mark.parametrize("seed", range(12))
def test_the_index_answers_as_the_rules_read_literally(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("warded.provenance.FOLD", FOLDS[seed % 4])
    if seed // 4 == 1:  # a short log of changed groups: values fall back to a full look
        monkeypatch.setattr("warded.provenance.LOG", 8)
    rng = random.Random(seed)

    def check(live: list[Source], overflowed: bool, answer: list[str]) -> None:
        value, got = answer[0], answer[1:]
        assert got == sorted(reference(value, live, overflowed)), (seed, value)

    session(rng, 60, lambda: rng.randrange(1, 12), rng.randrange(3, 15), check)


@pytest.mark.requirement("G18")
@pytest.mark.parametrize(("seed", "fold"), [(0, 0), (4, 0), (1, 10**9)])
def test_a_long_session_answers_as_an_index_of_its_live_sources_built_afresh(
    seed: int, fold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large sources in a short window: the floors pass 4096 chunks, groups are
    rebuilt, common chunks exceed MAX_PROBES positions (the tail filed at every
    lookup), or the tail's floors pass its oldest sources (never filed);
    every answer still equals that of an index built at once from the live
    sources (and the rules)."""
    monkeypatch.setattr("warded.provenance.FOLD", fold)
    rebuilt = [0]
    rebuild = Index._rebuilt
    cut = [0]
    evict = _Tail.evict

    def counted(self: Index, key: tuple[str, tuple[str, ...]]) -> Any:
        rebuilt[0] += 1
        return rebuild(self, key)

    def cuts(self: _Tail, first: int) -> None:
        evicts = self.evicts
        evict(self, first)
        cut[0] += self.evicts > evicts and bool(self.spans)  # evicted from, still used

    monkeypatch.setattr(Index, "_rebuilt", counted)
    monkeypatch.setattr(_Tail, "evict", cuts)
    rng = random.Random(1000 + seed)
    fresh: list[Any] = [None, None]
    checked = [0]

    def check(live: list[Source], overflowed: bool, answer: list[str]) -> None:
        value, got = answer[0], answer[1:]
        if fresh[0] is not live:
            entries = tuple(enumerate(live, 1))
            fresh[:] = [live, Index.of(Remembered(len(live), overflowed, 1, entries))]
        assert got == sorted(fresh[1].sources_of(value)), (seed, value)
        if checked[0] % 15 == 0:  # scanning sources this large is slow
            assert got == sorted(reference(value, live, overflowed)), (seed, value)
        checked[0] += 1

    session(rng, 80, lambda: rng.randrange(MAX_PROBES, 2 * MAX_PROBES), 3, check)
    if fold:
        assert rebuilt[0] == 0
        assert cut[0] > 0
    else:
        assert rebuilt[0] > 0


def regroup(value: str, size: int) -> str:
    """The value's letters and digits in groups of `size`, as people write numbers."""
    plain = "".join(c for c in value if c.isalnum())
    return " ".join(plain[i : i + size] for i in range(0, len(plain), size))


@pytest.mark.requirement("G18")
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_values_asked_again_see_what_was_added_since_however_it_is_written(
    data: st.DataObject,
) -> None:
    """Values asked once, then written into new sources respelled (case, spacing,
    invisible and look-alike characters, regrouped numbers: what only loose
    matching or a trusted source's joined numbers find), then asked again: the
    answer of an index that kept its tail (or filed it) is the rules' answer."""
    fold_at = data.draw(st.sampled_from(FOLDS))
    index = Index()
    live: list[Source] = []
    asked: list[str] = []
    draw_token = st.sampled_from(TOKENS)
    for step in range(data.draw(st.integers(1, 12))):
        name, labels = data.draw(st.sampled_from(KINDS))
        words = data.draw(st.lists(draw_token, min_size=0, max_size=4))
        if asked and data.draw(st.booleans()):
            value = data.draw(st.sampled_from(asked))
            how = data.draw(st.integers(0, 6))
            if how == 5:
                value = regroup(value, data.draw(st.integers(1, 5)))
            elif how < 5:
                value = respell(random.Random(data.draw(st.integers(0, 99))), value)
            words.insert(data.draw(st.integers(0, len(words))), value)
        live.append(Source(name, labels, (" ".join(words),)))
        index.update(Remembered(len(live), False, 1, ((len(live), live[-1]),)))
        fresh = data.draw(st.lists(draw_token, min_size=1, max_size=2))
        for value in [*fresh, *asked[-3:]]:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("warded.provenance.FOLD", fold_at)
                got = index.sources_of(value)
            assert got == reference(value, live, False), (step, value)
        asked.extend(fresh)


PIECES = ["a", "Z", "h", "t", "p", "s", ":", "/", "//", "://", ":///", " ", "\n", "\t", '"', "<"]
PIECES += ["9", "+", ".", "..", "-", "@", "_", "%", "~", "`", "'", "é", "Ω", "ß", "\u200b", "ｘ"]
PIECES += ["http://", "a.b", "xn--80ak6aa92e.com", "é.com/", "9http://x", "http://./p"]


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_normalization_paths_agree_with_the_regular_expressions(seed: int) -> None:
    rng = random.Random(seed)
    for n in range(5000):  # longer than 64 characters too, where the fast paths start
        written = "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 24 + n % 2 * 60)))
        for text in (written, strict(written)):
            assert chunks(text) == plain_chunks(text), text
            assert loose(text) == plain_loose(text), text
            assert _urls(text) == URL.findall(text), text
            assert _hosts(text) == plain_hosts(text), text
