"""Argument provenance: where each argument's value could have come from.

A session remembers its content as *sources* (`warded.model.Source`): text
the host declares trusted (`Gate.trust`, source `user` or another name),
the arguments of calls a human approved (`approved`) and every tool result
the model received (`tool:<name>`, with the labels it gave the session).
For a call, each string leaf of an argument gets the set of source names it
can be found in, plus the labels of the tool outputs it is found in; an
argument's set is the intersection of its leaves' sets. docs/provenance.md
states the rules for policy authors; in short:

* Strict match (gives the source's name and labels). Both sides are
  percent-decoded (up to three rounds), NFKC-normalized and case-folded, then
  cut into *chunks*: maximal runs of letters, digits and `@ . + - _ ~ %`
  (a chunk's leading and trailing dots dropped). A value matches a source
  when its chunk sequence occurs, contiguous and whole, inside one of the
  source's strings, and either is that whole string or has at least
  `MIN_PART` characters. In trusted sources (names that are not `tool:`),
  numbers written in groups also match written together and the other way
  round ("GB29 NWBK 6016" = "GB29NWBK6016"): a run of chunks of ASCII letters,
  digits and `+` with at least four digits.
* Loose match (gives only the source's labels, never its name). Both sides
  also lose everything but letters and digits after look-alike folding
  (`warded.scanners.normalize.fold`: invisible characters dropped, accents
  dropped, Cyrillic and Greek look-alikes read as Latin); a value of at least
  `MIN_PART` such characters matches any tool output that carries labels and
  contains it anywhere. So spacing, separators, zero-width characters and
  look-alike letters never hide that a value was in untrusted content, and
  never make a value look trusted.
* URLs (parsed with `urllib.parse`): a URL that is only a scheme and a host
  is matched as its host; any other URL must be found whole, and its host
  found in a tool output adds that output's labels. The hosts of URLs in
  sources are remembered beside them.
* Where an output scanner named `injection` flagged a string of a tool result,
  the text around its signals is remembered once more under the same
  `tool:<name>` and labels plus `INJECTED` (`warded.flagged` states the region
  rule), so a value found there carries `injected`. Detection only adds a
  label; it never removes one, and no tool output can give `user` or
  `approved`. A value shorter than `MIN_PART` that stands as whole chunks
  in a flagged region gains `INJECTED` alone (`Index.flagged_word`).
* A session whose content was not all remembered (the size bound evicted
  some, or a result could not be viewed) adds `untrusted` to every leaf.

Each session's index (`Index`, kept per gate by `Indexes`) takes sources in
as a *tail* that lookups scan (`str.find` over the chunks and loose keys
written out as text) and files them in per-group indexes (chunk positions,
grams of the loose keys) only once lookups have scanned `FOLD` times the
tail's size: a result no new value is looked for in costs its normalization
only, and one that many are looked for in is filed. An index remembers each
value's outcome per group and per tail; a value asked about again is
searched for in what was added since only (first in all the tail's recent
additions at once), and groups and tails that did not change are not looked
at. Both ways answer exactly the rules above
(tests/test_provenance_differential.py).
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from warded.model import Remembered, Source
from warded.scanners.normalize import fold

LIMIT = 262_144  # characters of remembered content per session (oldest first out)
MIN_PART = 5  # characters a value needs to match inside a longer string
UNTRUSTED = "untrusted"
INJECTED = "injected"  # a flagged region of a tool result (`warded.flagged`) gave it
USER = "user"
APPROVED = "approved"
TOOL = "tool:"
MAX_PROBES = 256  # candidate positions checked per lookup before falling back to a scan
CACHE_SESSIONS = 256  # session indexes kept in memory per gate

_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")
_CHUNK = re.compile(r"[\w@+\-~%](?:[\w@.+\-~%]*[\w@+\-~%])?")  # no dot at either end
_GROUPED = re.compile(r"[0-9a-z+]+\Z")
_DIGITS = re.compile(r"[0-9]")
_ALNUM_ONLY = re.compile(r"[\W_]+")
# ASCII: what is not in a chunk becomes a space; what is not a letter or digit goes
_APART = {c: " " for c in range(128) if not re.match(r"[\w@.+\-~%]", chr(c))}
_ALNUM_LOWER = {c: chr(c).lower() if chr(c).isalnum() else None for c in range(128)}
_SCHEME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+.-")
_URL_END = re.compile(r"[\s\"'<>`]")
# a URL (as `_urls` finds it) whose network location is only lowercase letters,
# digits and `._-`: `urlsplit(url).hostname` is that location
_PLAIN_HOST = re.compile(r"[^:]*://([a-z0-9._\-]*)(?:[/?#]|\Z)")
# a host, then anything after a path, query or fragment mark (its query may decode to spaces)
_SCHEMELESS = re.compile(r"[\w\-]+(?:\.[\w\-]+)+(?::\d+)?(?:[/?#][\s\S]*)?\Z")
_GRAM = 4  # loose index: grams of this length ...
_STEP = 2  # ... at every this-th position; needs MIN_PART >= _GRAM + _STEP - 1
_JOIN = 8  # longest run of grouped chunks a trusted source joins


def check_source(name: object) -> str:
    """A trusted source's name as the host declares it; ValueError if it is not one."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"a trusted source is named in lowercase letters, digits, '_' and '-', starting "
            f"with a letter (like 'user'); got {name!r}"
        )
    if name == UNTRUSTED or name.startswith("tool"):
        raise ValueError(f"{name!r} cannot name a trusted source: it names tool output or a label")
    return name


def leaves(value: Any) -> Iterator[str]:
    """The strings of a JSON-like value a source keeps: string values, keys, numbers."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from leaves(v)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from leaves(item)


def strings(value: Any) -> Iterator[str]:
    """The string leaves of an argument's value (what provenance is computed for)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


# -- normalization ------------------------------------------------------------------


def strict(text: str) -> str:
    """Percent-decoded (three rounds at most), NFKC-normalized and case-folded."""
    for _ in range(3):
        if "%" not in text:
            break
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def chunks(normalized: str) -> list[str]:
    """A strict-normalized string cut into chunks (module docstring)."""
    if len(normalized) > 64 and normalized.isascii():  # the same, without backtracking
        apart = normalized.translate(_APART)  # runs of chunk characters between spaces
        if "." not in apart:
            return apart.split()
        apart = f" {apart} ".replace(". ", " ").replace(" .", " ")  # a dot at a run's end
        if ". " in apart or " ." in apart:  # more than one: each run stripped
            return [c for r in apart.split() if (c := r.strip("."))]
        return apart.split()
    return _CHUNK.findall(normalized)


def loose(normalized: str) -> str:
    """A strict-normalized string look-alike folded, with only letters and digits kept."""
    if normalized.isascii():  # folding ASCII only lowers it
        return normalized.translate(_ALNUM_LOWER)
    return _ALNUM_ONLY.sub("", fold(normalized).text)


def _hosts(normalized: str) -> list[str]:
    """The hosts of the URLs in a strict-normalized string, also IDNA-decoded."""
    found: list[str] = []
    if "://" not in normalized:
        return found
    for url in _urls(normalized):
        plain = _PLAIN_HOST.match(url)  # what urlsplit reads as the host, read directly
        host = plain[1].rstrip(".") if plain else _host(url)
        if host:
            found.extend(_spellings(host))
    return found


def _urls(text: str) -> list[str]:
    """The URLs in a string, leftmost first and not overlapping, as a regular
    expression would find them: a scheme (a letter, then letters, digits, `+.-`),
    `://`, then one or more characters up to whitespace, a quote, `<`, `>` or a
    backtick. Found from where `://` is (an expression tries every position): the
    scheme is the run of scheme characters before it, from its first letter on,
    after the previous URL."""
    out: list[str] = []
    pos = 0
    i = text.find("://")
    while i >= 0:
        start = i
        while start > pos and text[start - 1] in _SCHEME:
            start -= 1
        while start < i and not "a" <= text[start] <= "z":
            start += 1
        end = _URL_END.search(text, i + 3)
        stop = len(text) if end is None else end.start()
        if start < i and stop > i + 3:
            out.append(text[start:stop])
            pos = stop
            i = text.find("://", stop)
        else:
            i = text.find("://", i + 1)
    return out


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def _spellings(host: str) -> list[str]:
    """A host as written and, if it is IDNA (`xn--`), decoded."""
    if "xn--" not in host:
        return [host]
    try:
        return [host, strict(host.encode("ascii").decode("idna"))]
    except (UnicodeError, ValueError):
        return [host]


def _as_url(normalized: str) -> tuple[str, bool] | None:
    """(host, whether the URL is nothing but a scheme and a host) for a URL value."""
    text = normalized.strip()
    if "://" not in text:
        if "@" in text or not _SCHEMELESS.match(text):
            return None
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host or not parts.scheme:
        return None
    bare = (
        port is None
        and parts.username is None
        and parts.password is None
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
        and "@" not in parts.netloc
    )
    return host.rstrip("."), bare


# -- the index ------------------------------------------------------------------------

STRICT, LOOSE = 2, 1
MEMO = 4096  # values whose outcomes an index remembers


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A value as matching reads it: its chunks, its loose key, and for a URL that is
    more than a scheme and a host, its host prepared the same way; and what a scan
    of a `_Tail` looks for: `needle` the chunks as a tail spells them (within a
    string if long enough, else as a whole string), `loose_needle` the loose key
    (whole if shorter than MIN_PART), `joined` a grouped number written together
    and `joined_needle` that as one chunk (for trusted sources)."""

    chunks: list[str]
    key: str
    host: _Prepared | None
    needle: str | None
    loose_needle: str | None
    joined: str | None
    joined_needle: str | None


def _needle(cs: list[str]) -> str | None:
    if not cs:
        return None
    body = " " + " ".join(cs) + " "
    return body if sum(map(len, cs)) >= MIN_PART else "\x01" + body + "\x01"


def _prepared(cs: list[str], key: str, host: _Prepared | None = None) -> _Prepared:
    joined = None
    if cs and all(map(_GROUPED.match, cs)):
        joined = "".join(cs)
        if len(_DIGITS.findall(joined)) < 4:
            joined = None
    loose_needle = (key if len(key) >= MIN_PART else "\x00" + key + "\x00") if key else None
    joined_needle = _needle([joined]) if joined is not None and len(cs) > 1 else None
    return _Prepared(cs, key, host, _needle(cs), loose_needle, joined, joined_needle)


@functools.lru_cache(maxsize=MEMO)
def _prepare(value: str) -> _Prepared:
    normalized = strict(value)
    url = _as_url(normalized)
    if url is not None and url[1]:
        normalized = url[0]
    host = None
    if url is not None and not url[1]:
        host = _prepared(chunks(url[0]), loose(url[0]))
    return _prepared(chunks(normalized), loose(normalized), host)


def _runs(cs: list[str]) -> Iterator[tuple[int, str]]:
    """(start, joined) for each run of 2 to _JOIN grouped chunks with four digits or
    more (a grouped number a trusted source also matches written together)."""
    for i in range(len(cs)):
        if not _GROUPED.match(cs[i]):
            continue
        joined = cs[i]
        for j in range(i + 1, min(i + _JOIN, len(cs))):
            if not _GROUPED.match(cs[j]):
                break
            joined += cs[j]
            if len(_DIGITS.findall(joined)) >= 4:
                yield i, joined


def _source_tags(
    name: str, labels: tuple[str, ...]
) -> tuple[tuple[str, ...], frozenset[str], frozenset[str], bool]:
    """A group's labels, the tags a value found in it gets (strictly; loosely: the
    labels only), and whether the source is a trusted one (not a tool's output)."""
    return labels, frozenset((name, *labels)), frozenset(labels), not name.startswith(TOOL)


class _Group:
    """Everything remembered under one (source name, labels).

    Positions only grow. Evicting a source moves the group's floors past it:
    what lies below them is dead and skipped, and the group is rebuilt from
    its live sources once most of it is dead. Every lookup takes a `since`
    pair, (flat position, loose position): only strings added at or after it
    are searched (an outcome already known for the older ones is extended
    with what was added since, not recomputed).
    """

    __slots__ = (
        "_length",
        "_pieces",
        "_text",
        "adds",
        "evicts",
        "flat",
        "floor",
        "floor_loose",
        "grams",
        "joins",
        "labels",
        "live",
        "loose_tags",
        "name",
        "short",
        "since",
        "spans",
        "tags",
        "trusted",
        "where",
    )

    def __init__(self, name: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.labels, self.tags, self.loose_tags, self.trusted = _source_tags(name, labels)
        self.flat: list[str | None] = [None]  # chunks, None between strings
        self.where: defaultdict[str, list[int]] = defaultdict(list)  # chunk -> positions in flat
        self.joins: dict[str, int] = {}  # trusted: grouped runs joined -> last position
        self._text = "\x00"  # labelled tool output: loose text, "\x00" between strings
        self._pieces: list[str] = []  # appended to it, not joined yet
        self._length = 1
        # its grams at every _STEP-th position -> positions in the loose text
        self.grams: defaultdict[str, list[int]] = defaultdict(list)
        self.short: dict[str, int] = {}  # its strings shorter than MIN_PART -> last position
        self.spans: deque[tuple[int, int, int]] = deque()  # (seq, flat end, loose end)
        self.floor = 0  # positions in flat below it are evicted
        self.floor_loose = 0  # ... and in the loose text
        self.live = 0  # characters of live sources
        self.adds = 0  # sources added so far
        self.evicts = 0  # evictions so far
        self.since = (1, 1)  # where strings added from now on start (flat, loose)

    def add(self, seq: int, source: Source, size: int) -> None:
        labelled = bool(self.labels)
        for leaf in source.leaves:
            normalized = strict(leaf)
            self._add_chunks(chunks(normalized))
            if "://" in normalized:
                for host in _hosts(normalized):
                    self._add_chunks(chunks(host))
            if labelled:
                self._add_loose(loose(normalized))
        self.since = (len(self.flat), self._length)
        self.spans.append((seq, *self.since))
        self.live += size
        self.adds += 1

    def evict(self, first: int, sizes: Mapping[int, int]) -> None:
        """Forget the sources numbered below `first`."""
        spans = self.spans
        while spans and spans[0][0] < first:
            seq, self.floor, self.floor_loose = spans.popleft()
            self.live -= sizes[seq]
            self.evicts += 1

    @property
    def dead(self) -> bool:
        """Whether most of it is evicted (time to rebuild from the live sources)."""
        return self.floor > 4096 and self.floor * 2 > len(self.flat)

    def _add_chunks(self, cs: list[str]) -> None:
        if not cs:
            return
        flat = self.flat
        start = len(flat)
        flat += cs
        flat.append(None)
        where = self.where
        for i, c in enumerate(cs, start):
            where[c].append(i)
        if self.trusted:
            self._add_joins(cs, start)

    def _add_joins(self, cs: list[str], start: int) -> None:
        for i, joined in _runs(cs):
            self.joins[joined] = start + i

    def _add_loose(self, key: str) -> None:
        if not key:
            return
        base = self._length
        n = len(key)
        if n < MIN_PART:
            self.short[key] = base
        self._pieces.append(key + "\x00")
        self._length += n + 1
        grams = self.grams
        for i in range(-base % _STEP, n - _GRAM + 1, _STEP):  # at multiples of _STEP
            grams[key[i : i + _GRAM]].append(base + i)

    @property
    def text(self) -> str:
        if self._pieces:
            self._text = "".join([self._text, *self._pieces])
            self._pieces = []
        return self._text

    # -- lookups --

    def match(self, value: _Prepared, since: tuple[int, int] = (0, 0)) -> int:
        """STRICT if the value is found here as the module docstring says, LOOSE if only
        its respelling or its URL's host is (labelled groups only), else 0; searching
        the strings added at or after `since` only."""
        at, at_loose = since
        cs = value.chunks
        if cs and (self.strict_match(cs, at) or (self.trusted and self.joined_match(value, at))):
            return STRICT
        if not self.labels:
            return 0
        if self.loose_match(value.key, at_loose):
            return LOOSE
        host = value.host
        if host is not None and (
            self.strict_match(host.chunks, at) or self.loose_match(host.key, at_loose)
        ):
            return LOOSE
        return 0

    def strict_match(self, cs: list[str], since: int = 0, anywhere: bool = False) -> bool:
        """Whether the chunk sequence occurs whole in one live string (module docstring);
        `anywhere`: as whole chunks inside a longer string however short it is."""
        m = len(cs)
        best: list[int] | None = None
        offset = 0
        where = self.where
        for k, c in enumerate(cs):
            found = where.get(c)
            if found is None:
                return False
            if best is None or len(found) < len(best):
                best, offset = found, k
        if best is None:  # no chunks: nothing to find
            return False
        long_enough = anywhere or sum(map(len, cs)) >= MIN_PART
        flat, floor = self.flat, max(self.floor, since)
        probes = best if len(best) <= MAX_PROBES else best[-MAX_PROBES:]
        for q in reversed(probes):  # newest first; below the floor all are dead
            if q < floor + offset:
                return False
            p = q - offset
            if flat[p : p + m] != cs:
                continue
            if long_enough or (flat[p - 1] is None and flat[p + m] is None):
                return True
        if len(best) > MAX_PROBES:
            return self._strict_scan(cs, long_enough, floor)
        return False

    def _strict_scan(self, cs: list[str], long_enough: bool, floor: int) -> bool:
        flat, m = self.flat, len(cs)
        for p in self.where.get(cs[0], ()):
            whole = flat[p - 1] is None and flat[p + m] is None
            if p >= floor and flat[p : p + m] == cs and (long_enough or whole):
                return True
        return False

    def joined_match(self, value: _Prepared, since: int = 0) -> bool:
        """Trusted sources: a grouped number written together or apart."""
        joined = value.joined
        if joined is None:
            return False
        if self.joins.get(joined, -1) >= max(self.floor, since):
            return True
        return len(value.chunks) > 1 and self.strict_match([joined], since)

    def loose_match(self, key: str, since: int = 0) -> bool:
        """Whether the loose key occurs in a live string of this (labelled) group."""
        n = len(key)
        floor = max(self.floor_loose, since)
        if n < MIN_PART:
            return self.short.get(key, -1) >= floor
        grams = self.grams
        for residue in range(_STEP):
            best: list[int] | None = None
            at = 0
            for j in range(residue, n - _GRAM + 1, _STEP):
                found = grams.get(key[j : j + _GRAM])
                if found is None:
                    best = None
                    break
                if best is None or len(found) < len(best):
                    best, at = found, j
            if best is None:
                continue
            if len(best) > MAX_PROBES:
                return self.text.find(key, floor) >= 0
            text = self.text
            for q in reversed(best):
                if q < floor + at:
                    break
                if text.startswith(key, q - at):
                    return True
        return False


class _Tail:
    """Sources of one (source name, labels) remembered but not filed in a `_Group`
    yet, kept as text that a lookup scans (`str.find`) instead of indexes.

    `text` holds each string's chunks as `"\x01 c1 c2 ... \x01"`, so a chunk
    sequence occurs contiguous in one string exactly where `" c1 c2 "` occurs,
    and is that whole string exactly where `"\x01 c1 c2 \x01"` does; `loose`
    is the strings' loose keys, as in `_Group`; `joins` (trusted) the grouped
    numbers written together, each at the position of the last string it was
    in. Positions are counted from the tail's first character ever: the texts
    are only appended to, and evicting a source moves the floors past it (what
    lies below them is cut off once it is most of the text), so a lookup that
    searched up to some position searches only what lies beyond it next time.
    """

    __slots__ = (
        "base",
        "base_loose",
        "evicts",
        "floor",
        "floor_loose",
        "joins",
        "labels",
        "loose",
        "loose_tags",
        "spans",
        "tags",
        "text",
        "trusted",
    )

    def __init__(self, name: str, labels: tuple[str, ...]) -> None:
        self.labels, self.tags, self.loose_tags, self.trusted = _source_tags(name, labels)
        self.text = ""
        self.loose = "\x00"
        self.base = 0  # the position of text[0]
        self.base_loose = 0  # ... and of loose[0]
        self.floor = 0  # positions below it are evicted
        self.floor_loose = 1
        self.joins: dict[str, int] = {}
        self.spans: deque[tuple[int, int, int]] = deque()  # (seq, end, loose end)
        self.evicts = 0

    @property
    def end(self) -> int:
        return self.base + len(self.text)

    @property
    def end_loose(self) -> int:
        return self.base_loose + len(self.loose)

    def add(self, seq: int, source: Source) -> tuple[str, str]:
        """Append the source; returns what was appended to `text` and to `loose`."""
        pieces: list[str] = []
        keys: list[str] = []
        at = self.end
        for leaf in source.leaves:
            normalized = strict(leaf)
            strings = [chunks(normalized)]
            if "://" in normalized:
                strings += [chunks(host) for host in _hosts(normalized)]
            for cs in strings:
                if cs:
                    if self.trusted:
                        for _, joined in _runs(cs):
                            self.joins[joined] = at
                    piece = "\x01 " + " ".join(cs) + " \x01"
                    pieces.append(piece)
                    at += len(piece)
            if self.labels:
                key = loose(normalized)
                if key:
                    keys.append(key + "\x00")
        added, added_loose = "".join(pieces), "".join(keys)
        text, self.text = self.text, ""  # the one reference: += extends it in place
        text += added
        self.text = text
        if added_loose:
            text, self.loose = self.loose, ""
            text += added_loose
            self.loose = text
        self.spans.append((seq, self.base + len(self.text), self.base_loose + len(self.loose)))
        return added, added_loose

    def evict(self, first: int) -> None:
        """Forget the sources numbered below `first`."""
        spans = self.spans
        while spans and spans[0][0] < first:
            _, self.floor, self.floor_loose = spans.popleft()
            self.evicts += 1
        if self.floor - self.base > len(self.text) // 2:
            self.text = self.text[self.floor - self.base :]
            self.base = self.floor
        cut = self.floor_loose - 1  # a whole key's "\x00" before it stays
        if cut - self.base_loose > len(self.loose) // 2:
            self.loose = self.loose[cut - self.base_loose :]
            self.base_loose = cut

    def match(self, value: _Prepared, at: int = 0, at_loose: int = 0) -> int:
        """As `_Group.match`, searching the text from position `at` and the loose
        text from `at_loose` on."""
        text, base = self.text, self.base
        start = max(at, self.floor) - base
        needle = value.needle
        if needle is not None and (
            text.find(needle, start) >= 0
            or (
                self.trusted
                and value.joined is not None
                and (
                    self.joins.get(value.joined, -1) >= self.floor
                    or (
                        value.joined_needle is not None
                        and text.find(value.joined_needle, start) >= 0
                    )
                )
            )
        ):
            return STRICT
        if not self.labels:
            return 0
        keys = self.loose
        start_loose = max(at_loose, self.floor_loose) - 1 - self.base_loose  # from a "\x00"
        if value.loose_needle is not None and keys.find(value.loose_needle, start_loose) >= 0:
            return LOOSE
        host = value.host
        if host is not None and (
            (host.needle is not None and text.find(host.needle, start) >= 0)
            or (host.loose_needle is not None and keys.find(host.loose_needle, start_loose) >= 0)
        ):
            return LOOSE
        return 0


Key = tuple[str, tuple[str, ...]]  # a group's (source name, sorted labels)


class _Known:
    """What an index knows of one value: its prepared form, and per group the outcome
    and the group's state when it was decided (adding can only make a value found,
    evicting only lose it); `tags` is the answer of the groups as of position
    `seen` of the index's log of changed groups. The same for the tail: per tail
    key the outcome and how far its texts were searched, `tail_tags` the answer
    as of position `tail_seen` of the index's log of changed tails."""

    __slots__ = (
        "groups",
        "prepared",
        "recent",
        "recent_loose",
        "seen",
        "tags",
        "tail",
        "tail_seen",
        "tail_tags",
    )

    def __init__(self, prepared: _Prepared) -> None:
        self.prepared = prepared
        self.seen = -1
        self.tags: frozenset[str] = frozenset()
        # per group key: (outcome, the group, its adds and evicts, where it ended)
        self.groups: dict[Key, tuple[int, _Group, int, int, tuple[int, int]]] = {}
        self.tail_seen = -1
        self.tail_tags: frozenset[str] = frozenset()
        # per tail key: (outcome, where its text and loose text were searched up to,
        # the tail, its evictions)
        self.tail: dict[Key, tuple[int, int, int, _Tail, int]] = {}
        self.recent = 0  # where the index's recent texts were searched up to
        self.recent_loose = 0


LOG = 1024  # changed groups an index lists before it forgets the older half
FOLD = 64  # a tail is filed once lookups scanned this many times its characters
RECENT = 65_536  # characters of the tail's recent texts before they start anew


def _key(source: Source) -> Key:
    labels = source.labels
    return (source.name, labels if len(labels) < 2 else tuple(sorted(labels)))


class Index:
    """What one session remembers, indexed for matching; extended as sources are added.

    Sources are taken in as a *tail* (`_Tail`): text that lookups scan. Filing
    them in the groups' indexes costs far more than one scan, and most results
    are never searched for a value that is not already known, so the tail is
    filed (*folded* into the groups) only once the lookups have scanned FOLD
    times its size: until then scanning was the cheaper, and after it the
    indexes are (at most about twice the cost of the better of the two).
    Every change to a group is listed in a log, so a value asked about again is
    brought up to date by looking at the groups changed since, only; and the
    tail only grows between folds, so a value asked about again searches only
    what was appended to it.
    """

    def __init__(self) -> None:
        self.version = 0
        self.first = 1
        self.overflowed = False
        self._groups: dict[Key, _Group] = {}
        self._entries: deque[tuple[int, Source]] = deque()
        self._sizes: dict[int, int] = {}
        self._memo: dict[str, _Known] = {}  # oldest first out
        self._log: list[Key] = []  # the keys of changed groups, oldest first
        self._dropped = 0  # log positions forgotten (the log starts there)
        self._pending: list[tuple[int, Source]] = []  # the tail's sources, oldest first
        self._read = 0  # ... of which this many are in its texts
        self._tail: dict[Key, _Tail] = {}
        self._tail_size = 0  # characters of the tail's sources
        self._tail_log: list[Key] = []  # the keys of changed tails, oldest first
        self._tail_dropped = 0  # ... positions forgotten (the log starts there)
        # what was added to the tail, all keys together (`_news`), and where they start;
        # up to log position `_slow` tails were also evicted from or trusted ones added to
        self._recent = ""
        self._recent_base = 0
        self._recent_loose = "\x00"
        self._recent_loose_base = 0
        self._slow = 0
        self._scanned = 0  # characters lookups scanned in this generation of the tail
        self.lock = threading.Lock()  # held by `Indexes` around every use

    @classmethod
    def of(cls, remembered: Remembered) -> Index:
        index = cls()
        index.update(remembered)
        return index

    @property
    def size(self) -> int:
        """Characters of the live sources."""
        return sum(g.live for g in self._groups.values()) + self._tail_size

    def update(self, remembered: Remembered) -> None:
        """Take in what a store returned for sources after `self.version`."""
        for seq, source in remembered.entries:
            if seq > self.version:
                self._pending.append((seq, source))
                self._tail_size += sum(map(len, source.leaves))  # source.size, no generator
        first = remembered.first
        if first > self.first:
            self._evict(first)
        self.version = max(self.version, remembered.version)
        if remembered.overflowed and not self.overflowed:
            self.overflowed = True
            self._forget_log()  # every answer changes

    def _evict(self, first: int) -> None:
        log = self._log
        entries = self._entries
        gone = []
        while entries and entries[0][0] < first:
            gone.append(entries.popleft()[0])
        for key, group in list(self._groups.items()):
            evicts = group.evicts
            group.evict(first, self._sizes)
            if group.evicts == evicts:
                continue
            log.append(key)
            if not group.spans:
                del self._groups[key]
            elif group.dead:
                self._groups[key] = self._rebuilt(key)
        for seq in gone:
            del self._sizes[seq]
        self._trim_log()
        pending = self._pending
        if pending and pending[0][0] < first:
            out = 0
            while out < len(pending) and pending[out][0] < first:
                self._tail_size -= sum(map(len, pending[out][1].leaves))
                out += 1
            del pending[:out]
            self._read = max(0, self._read - out)
            for key, tail in list(self._tail.items()):
                evicts = tail.evicts
                tail.evict(first)
                if tail.evicts != evicts:
                    self._tail_log.append(key)
                    self._slow = self._tail_dropped + len(self._tail_log)
                    if not tail.spans:
                        del self._tail[key]
        self.first = first

    def _fold(self) -> None:
        """File the tail's sources in the groups."""
        for seq, source in self._pending:
            self._log.append(self._add(seq, source))
        self._pending = []
        self._tail_size = 0
        self._tail = {}
        self._read = 0
        self._tail_dropped += len(self._tail_log) + 1  # every value looks afresh
        self._tail_log = []
        self._slow = self._tail_dropped
        self._scanned = 0
        self._trim_log()

    def _trim_log(self) -> None:
        log = self._log
        while len(log) > LOG:
            del log[: LOG // 2]
            self._dropped += LOG // 2

    def _forget_log(self) -> None:
        self._dropped += len(self._log) + 1
        self._log = []

    def _add(self, seq: int, source: Source) -> Key:
        key = _key(source)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(*key)
        size = sum(map(len, source.leaves))  # source.size, without a generator
        group.add(seq, source, size)
        self._entries.append((seq, source))
        self._sizes[seq] = size
        return key

    def _rebuilt(self, key: Key) -> _Group:
        group = _Group(*key)
        for seq, source in self._entries:
            if _key(source) == key:
                group.add(seq, source, self._sizes[seq])
        return group

    def sources_of(self, value: str) -> frozenset[str]:
        """The sources (and labels) a string can be found in (module docstring)."""
        known = self._memo.get(value)
        if known is None:
            known = self._memo[value] = _Known(_prepare(value))
            if len(self._memo) > MEMO:
                del self._memo[next(iter(self._memo))]
        if self._pending and self._scanned >= FOLD * self._tail_size:
            self._fold()
        tags = self._grouped(known)
        if not self._pending:
            return tags
        tail = self._tailed(known)
        return tags | tail if tail else tags

    def _grouped(self, known: _Known) -> frozenset[str]:
        """The value's answer from the groups."""
        now = self._dropped + len(self._log)
        if known.seen == now:
            return known.tags
        if known.seen >= self._dropped:  # only the groups changed since
            changed = False
            for key in set(self._log[known.seen - self._dropped :]):
                changed = self._refresh_one(known, key) or changed
            if changed:
                known.tags = self._tags(known)
            known.seen = now
            return known.tags
        # what it knows of groups gone since must go too: a group of that key made
        # anew later would otherwise look unchanged, and the answer stay without it
        known.groups = {k: v for k, v in known.groups.items() if k in self._groups}
        for key in self._groups:
            self._refresh_one(known, key)
        known.tags = self._tags(known)
        known.seen = now
        return known.tags

    def _refresh_one(self, known: _Known, key: Key) -> bool:
        decided = known.groups
        was = decided.get(key)
        group = self._groups.get(key)
        if group is None:
            return decided.pop(key, None) is not None
        if was is not None and was[1] is group and (was[0] == 0 or was[3] == group.evicts):
            # found nowhere (evicting cannot change that) or nothing evicted since:
            # only what was added since can change the outcome
            if was[2] == group.adds:
                if was[3] != group.evicts:
                    decided[key] = (was[0], group, group.adds, group.evicts, was[4])
                return False
            if was[0] == STRICT:
                outcome = STRICT
            else:
                outcome = max(was[0], group.match(known.prepared, was[4]))  # what was added
        else:
            outcome = group.match(known.prepared)
        decided[key] = (outcome, group, group.adds, group.evicts, group.since)
        return was is None or was[0] != outcome

    def _tags(self, known: _Known) -> frozenset[str]:
        tags: set[str] = set()
        decided = known.groups
        for key, group in self._groups.items():
            outcome = decided[key][0]
            if outcome == STRICT:
                tags |= group.tags
            elif outcome == LOOSE:
                tags |= group.loose_tags
        if self.overflowed:
            tags.add(UNTRUSTED)
        return frozenset(tags)

    def _take(self) -> None:
        """Add the sources not yet in the tail's texts to them."""
        tails, log = self._tail, self._tail_log
        added: list[str] = []
        added_loose: list[str] = []
        for seq, source in self._pending[self._read :]:
            key = _key(source)
            tail = tails.get(key)
            if tail is None:
                tail = tails[key] = _Tail(*key)
            text, keys = tail.add(seq, source)
            added.append(text)
            added_loose.append(keys)
            log.append(key)
            if tail.trusted:  # joined numbers are not in the recent texts
                self._slow = self._tail_dropped + len(log)
        self._read = len(self._pending)
        if len(log) > LOG:
            self._tail_dropped += len(log)
            self._slow = max(self._slow, self._tail_dropped)
            log.clear()
        recent = self._recent
        if len(recent) > RECENT:  # values that searched less far look per tail
            self._recent_base += len(recent)
            recent = ""
        self._recent = ""  # the one reference: += extends it in place
        recent += "".join(added)
        self._recent = recent
        recent = self._recent_loose
        if len(recent) > RECENT:
            self._recent_loose_base += len(recent) - 1
            recent = "\x00"
        self._recent_loose = ""
        recent += "".join(added_loose)
        self._recent_loose = recent

    def _news(self, known: _Known) -> bool:
        """Whether the value may be found in what was added to the tail since it
        was last looked for (its chunks, loose key or host's, anywhere in it)."""
        value = known.prepared
        text, at = self._recent, known.recent - self._recent_base
        keys, at_loose = self._recent_loose, known.recent_loose - 1 - self._recent_loose_base
        if value.needle is not None and text.find(value.needle, at) >= 0:
            return True
        if value.loose_needle is not None and keys.find(value.loose_needle, at_loose) >= 0:
            return True
        host = value.host
        return host is not None and (
            (host.needle is not None and text.find(host.needle, at) >= 0)
            or (host.loose_needle is not None and keys.find(host.loose_needle, at_loose) >= 0)
        )

    def _tailed(self, known: _Known) -> frozenset[str]:
        """The value's answer from the tail (whose texts are first brought up to date)."""
        log = self._tail_log
        if self._read < len(self._pending):
            self._take()
        now = self._tail_dropped + len(log)
        if known.tail_seen == now:
            return known.tail_tags
        end = self._recent_base + len(self._recent)
        end_loose = self._recent_loose_base + len(self._recent_loose)
        if (
            known.tail_seen >= self._slow
            and known.recent >= self._recent_base
            and known.recent_loose > self._recent_loose_base
            and not self._news(known)
        ):  # only added to, and the value is in nothing added: no outcome changes
            known.tail_seen, known.recent, known.recent_loose = now, end, end_loose
            return known.tail_tags
        known.recent, known.recent_loose = end, end_loose
        decided = known.tail
        keys: Iterable[Key]
        if known.tail_seen >= self._tail_dropped:  # only the tails changed since
            keys = set(log[known.tail_seen - self._tail_dropped :])
            changed = False
        else:
            keys = self._tail
            known.tail = decided = {k: v for k, v in decided.items() if k in keys}
            changed = True
        scanned = 0
        for key in keys:
            was = decided.get(key)
            tail = self._tail.get(key)
            if tail is None:
                if was is not None:
                    del decided[key]
                    changed = changed or was[0] != 0
                continue
            end, end_loose = tail.end, tail.end_loose
            if was is None or was[3] is not tail or (was[0] and was[4] != tail.evicts):
                outcome = tail.match(known.prepared)  # found nowhere, or where evicted
                scanned += end - tail.floor + end_loose - tail.floor_loose
            elif was[0] == STRICT:
                outcome = STRICT
            else:  # search what was added
                outcome = max(was[0], tail.match(known.prepared, was[1], was[2]))
                scanned += end - was[1] + end_loose - was[2]
            decided[key] = (outcome, end, end_loose, tail, tail.evicts)
            changed = changed or outcome != (was[0] if was is not None else 0)
        self._scanned += scanned
        if changed:
            tags: set[str] = set()
            for key, (outcome, *_) in decided.items():
                if outcome == STRICT:
                    tags |= self._tail[key].tags
                elif outcome == LOOSE:
                    tags |= self._tail[key].loose_tags
            known.tail_tags = frozenset(tags)
        known.tail_seen = now
        return known.tail_tags

    def flagged_word(self, value: str, found: frozenset[str]) -> frozenset[str]:
        """Escalation only: `found` plus INJECTED if the value is too short to match
        inside a longer string (under MIN_PART characters) and stands as whole chunks
        (a word: "Fred", "13") in a live flagged region. Nothing else is added — no
        source name, no label — so this can turn a wait into a refusal, never a
        refusal or a wait into an allow."""
        if INJECTED in found:
            return found
        cs = _prepare(value).chunks
        if not cs or sum(map(len, cs)) >= MIN_PART:
            return found
        if self._pending:  # the tail's sources are looked at through the groups
            self._fold()
        for group in self._groups.values():
            if INJECTED in group.labels and group.strict_match(cs, anywhere=True):
                return found | {INJECTED}
        return found

    def provenance(self, args: Mapping[str, Any], names: Iterable[str]) -> dict[str, list[str]]:
        """`context.provenance` for the declared argument names: per argument, the
        intersection of its string leaves' sets (`[]` when it has none)."""
        out: dict[str, list[str]] = {}
        for name in names:
            value = args.get(name)
            if isinstance(value, str):
                found = self.flagged_word(value, self.sources_of(value))
                out[name] = sorted(found) if found else []
                continue
            common: frozenset[str] | None = None
            for leaf in strings(value):
                found = self.flagged_word(leaf, self.sources_of(leaf))
                common = found if common is None else common & found
                if not common:
                    break
            out[name] = sorted(common) if common else []
        return out


class Indexes:
    """The indexes of recently used sessions, kept current against a store's state."""

    def __init__(self, size: int = CACHE_SESSIONS) -> None:
        self._size = size
        self._indexes: OrderedDict[str, Index] = OrderedDict()
        self._lock = threading.Lock()

    def advance(self, session_id: str, remembered: Remembered, count: int) -> None:
        """Take in what this process just remembered (`Tx.remember`'s answer for `count`
        sources), if the cached index was exactly where the store was before: then
        nothing else was remembered in between, and no read is needed."""
        with self._lock:
            index = self._indexes.get(session_id)
        if index is None:
            return
        with index.lock:
            if index.version == remembered.version - count:
                index.update(remembered)

    def provenance(
        self,
        session_id: str,
        version: int,
        read: Callable[[int], Remembered],
        args: Mapping[str, Any],
        names: Iterable[str],
    ) -> dict[str, list[str]]:
        """`Index.provenance` on the session's index, brought to at least `version`
        first; `read(after)` returns the store's `Remembered` for the sources
        numbered after `after` (`Store.sources`). One session's index is used by
        one thread at a time."""
        with self._lock:
            index = self._indexes.get(session_id)
            if index is None:
                index = self._indexes[session_id] = Index()
                if len(self._indexes) > self._size:
                    self._indexes.popitem(last=False)
            else:
                self._indexes.move_to_end(session_id)
        with index.lock:
            if index.version < version:
                index.update(read(index.version))
            return index.provenance(args, names)
