"""The links inside free text: what a message body sends its reader to.

A free-text argument (a message's body) is not one value whose provenance can
be looked up, but the identifiers inside it are: each URL, host and e-mail
address is a target of its own. `links(text)` finds them; the gate gives an
action whose context declares `links: { <arg>: { count: Long, provenance:
Set<String> } }` the number of links in that argument and the intersection of
their provenance sets (`warded.provenance`; `[]` when there is none), so a
policy can let a message through whose links all came from the user and
refuse one whose link stands in flagged orders (docs/provenance.md, "Links
inside free text").

The rule over-approximates: what a reader could follow counts as a link. The
text is read as provenance reads it (percent-decoded, NFKC-normalized,
case-folded) with invisible characters dropped and the ideographic full stop
(`。`, which IDNA reads as a dot) read as a dot, then:

* a URL: a scheme (a letter, then letters, digits, `+ . -`), `://`, and what
  follows up to whitespace, a quote, `<`, `>` or a backtick;
* an e-mail address: `local@domain` with a dot in the domain;
* a host, with or without a path: two or more labels of letters, digits, `-`
  and `_`, joined by dots, the last of which has a letter and two characters or more (`evil.xyz`,
  `www.example.com/a?b=c`, `file.txt`), or four numbers (`10.0.0.1`), and
  what follows a `/` or `:` directly up to whitespace or a quote.

Each link loses trailing punctuation (`. , ; : ! ? ) ] } '`), the sentence it
ends. A word that only looks like a host (`report.pdf`) counts as a link too:
it gets the provenance of that word, never less than a link would.

For a person deciding a held call, `listed` gives each link of an argument
with the sources it alone was found in (the gate records that on the decision
that holds the call, `detail.links_found`), and `for_approvers` and `shown`
read it back as the approvals page and `warded approvals show` present it: a
host outside ASCII beside its punycode, what does not print as its code.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from warded.provenance import APPROVED, INJECTED, TOOL, UNTRUSTED, USER, strict, strings
from warded.redaction import MASK  # what a link not in the arguments as approvers see them shows
from warded.scanners.normalize import INVISIBLE

# invisible characters go; the ideographic full stop separates a host's labels
# as a dot does (IDNA; NFKC already turns the full-width and half-width ones into it)
_READ = {**{ord(c): None for c in INVISIBLE}, 0x3002: "."}
_LINK = re.compile(
    r"[a-z][a-z0-9+.\-]*://[^\s\"'<>`]+"  # a URL
    r"|[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"  # an e-mail address
    r"|(?<![\w.@\-])(?:(?:[\w\-]+\.)+(?=[\w\-]*[^\W\d_])[\w\-]{2,}|\d+\.\d+\.\d+\.\d+)"  # a host
    r"(?:[/:?#][^\s\"'<>`]*)?"
)
_TRAILING = ".,;:!?)]}'"


def links(text: str) -> list[str]:
    """The links in `text` (module docstring), normalized, in order."""
    normalized = strict(text).translate(_READ)
    out = []
    for m in _LINK.finditer(normalized):
        link = m.group().rstrip(_TRAILING)
        if link:
            out.append(link)
    return out


# -- the links an approver sees ---------------------------------------------------------

MAX_LISTED = 100  # links listed per argument (the count says how many there are)
Lookup = Callable[[Mapping[str, Any], tuple[str, ...]], Mapping[str, list[str]]]


def listed(
    names: Iterable[str], value: Mapping[str, Any], shown: Mapping[str, Any], lookup: Lookup
) -> dict[str, list[dict[str, Any]]]:
    """Per argument in `names`: its links (the first `MAX_LISTED`), each with the
    sources it alone can be found in, as `lookup` (`Indexes.provenance` on the
    session, given a mapping and its keys) answers for it — what the shared set
    of `context.links` is the intersection of. A link's text is kept only if the
    same link is in `shown` (the arguments with sensitive values and scanner
    findings masked, as approvers see them); any other is `MASK`, with its sources."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        found = [x for s in strings(value.get(name)) for x in links(s)][:MAX_LISTED]
        masked = shown is not value  # nothing masked: every link is as approvers see it
        visible = Counter(x for s in strings(shown.get(name)) for x in links(s)) if masked else None
        keys = tuple(str(i) for i in range(len(found)))
        sources = lookup(dict(zip(keys, found, strict=True)), keys) if found else {}
        items = []
        for key, link in zip(keys, found, strict=True):
            text = link
            if visible is not None:
                text = link if visible[link] > 0 else MASK
                visible[link] -= 1
            items.append({"link": text, "provenance": list(sources.get(key, []))})
        out[name] = items
    return out


@dataclass(frozen=True, slots=True)
class Shown:
    """A link as a person should read it: `text` with every character that does not
    print written as `\\u{…}`; `host` its host, `ascii` the host as DNS spells it
    (punycode) and `unicode` as a browser may display it, each given only where it
    differs from `host`; `non_ascii` whether the host has a character outside ASCII
    (a look-alike letter, a digit from another script)."""

    text: str
    host: str
    ascii: str | None
    unicode: str | None
    non_ascii: bool


def shown(link: str) -> Shown:
    """How `link` (a link as `links` or `listed` gives it) is shown to approvers."""
    host = _host_of(link)
    ascii_form, unicode_form = _punycode(host), _unpunycode(host)
    return Shown(
        text=printable(link),
        host=printable(host),
        ascii=printable(ascii_form) if ascii_form != host else None,
        unicode=printable(unicode_form) if unicode_form != host else None,
        non_ascii=not host.isascii() or unicode_form != host,
    )


def printable(text: str) -> str:
    """`text` as a person should read it, on a page or a terminal: each control, format,
    private-use, unassigned or separator character other than the space (bidi overrides,
    zero-width ones, escape, line breaks) written as `\\u{hex}`, and so is a backslash
    that would start such a code, so each `\\u{…}` shown stands for one character."""
    return "".join(
        f"\\u{{{ord(c):04x}}}"
        if (unicodedata.category(c)[0] in "CZ" and c != " ")
        or (c == "\\" and text.startswith("u{", i + 1))
        else c
        for i, c in enumerate(text)
    )


def _host_of(link: str) -> str:
    rest = link.split("://", 1)[1] if "://" in link else link
    rest = re.split(r"[/?#]", rest, maxsplit=1)[0]
    rest = rest.rsplit("@", 1)[-1]  # an address's domain; a URL's user info dropped
    if rest.startswith("["):
        return rest.split("]", 1)[0] + "]"
    return rest.split(":", 1)[0]


def _punycode(host: str) -> str:
    labels = []
    for label in host.split("."):
        try:
            labels.append(label if label.isascii() else "xn--" + label.encode("punycode").decode())
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def _unpunycode(host: str) -> str:
    labels = []
    for label in host.split("."):
        try:
            plain = (
                label[4:].encode("ascii").decode("punycode") if label.startswith("xn--") else label
            )
        except UnicodeError:
            plain = label
        labels.append(plain)
    return ".".join(labels)


@dataclass(frozen=True, slots=True)
class Listed:
    """One link of an argument as approvers see it: how it shows and its own sources."""

    shown: Shown
    provenance: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return INJECTED in self.provenance


@dataclass(frozen=True, slots=True)
class ArgumentLinks:
    """What the gate saw of the links in one argument: their count, the sources they
    all share (`context.links.<arg>`), and each link with its own sources; `items` is
    None for a record from before links were listed (only the count and set are known)."""

    arg: str
    count: int
    provenance: tuple[str, ...]
    items: tuple[Listed, ...] | None

    @property
    def unlisted(self) -> int:
        return self.count - len(self.items) if self.items is not None else 0

    def to_json(self) -> dict[str, Any]:
        """As the service's approval views give it (`links` in docs/api.md)."""
        items = None
        if self.items is not None:
            items = [
                {
                    "link": x.shown.text,
                    "host": x.shown.host,
                    "ascii": x.shown.ascii,
                    "unicode": x.shown.unicode,
                    "non_ascii": x.shown.non_ascii,
                    "provenance": list(x.provenance),
                    "flagged": x.flagged,
                }
                for x in self.items
            ]
        return {
            "arg": self.arg,
            "count": self.count,
            "provenance": list(self.provenance),
            "items": items,
            "unlisted": self.unlisted,
        }


def for_approvers(context: object, found: object) -> list[ArgumentLinks]:
    """The links of a held call, from its decision record: `context` its
    `context.links`, `found` its `detail.links_found` (absent in older records).
    Anything not of the recorded shape is left out rather than guessed at."""
    out: list[ArgumentLinks] = []
    if not isinstance(context, Mapping):
        return out
    listing = found if isinstance(found, Mapping) else {}
    for arg in sorted(k for k in context if isinstance(k, str)):
        seen = context[arg]
        if not isinstance(seen, Mapping) or not isinstance(seen.get("count"), int):
            continue
        raw = listing.get(arg)
        items = None
        if isinstance(raw, list):
            items = tuple(
                Listed(shown(str(x["link"])), _tags(x.get("provenance")))
                for x in raw
                if isinstance(x, Mapping) and "link" in x
            )
        out.append(ArgumentLinks(arg, seen["count"], _tags(seen.get("provenance")), items))
    return out


def _tags(value: object) -> tuple[str, ...]:
    return tuple(str(t) for t in value) if isinstance(value, list | tuple) else ()


def source_words(tag: str) -> str:
    """A provenance tag in words, for people: a source's name or a label."""
    if tag.startswith(TOOL):
        return f"tool result: {tag[len(TOOL) :]}"
    return _WORDS.get(tag, tag)


_WORDS = {
    USER: "the user",
    APPROVED: "approved by a person",
    INJECTED: "flagged: injected orders",
    UNTRUSTED: "label: untrusted",
}
