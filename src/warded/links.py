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
"""

from __future__ import annotations

import re

from warded.provenance import strict
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
