"""Flagged regions: where in a tool result an injection scanner found orders.

When an output scanner named `injection` reports a string of a tool result,
the gate remembers, beside the whole result, the *flagged regions* of that
string — the text around the scanner's signals — as one more source with the
result's tool name and labels plus `injected` (`warded.provenance.INJECTED`).
A value found there carries `injected` in `context.provenance.<arg>`, and a
policy can refuse it outright instead of asking a person. Detection only ever
adds a label: a value outside every region keeps exactly the provenance it
had, and a scanner that misses leaves the value as it was (untrusted, waiting
for a person where the policy says so).

The rule, for one string and the scanner's findings in it:

0. *Anchors.* Only signals that address the model or subvert its task mark a
   region: every finding's kind except `ASKS`, the kinds that say what a
   text asks for or who it claims to be from (`action_request`,
   `bulk_request`, `about_user`, `tool_reference`, `tool_action`,
   `authority_claim`). Honest
   documents make such asks too — a bill asks for a payment to its IBAN — so
   an ask is flagged only where it stands in an anchor's sentence or between
   two anchors. A kind the scanner adds later is an anchor (escalation by
   default).
1. *Clusters.* Anchors sorted by start; an anchor joins the current cluster
   if it starts at most `GAP` characters after the cluster's end (the text
   between two anchors that close together is the orders they frame);
   otherwise it starts a new cluster.
2. *Sentences.* Each cluster is widened to whole sentences: its start moves
   back to the start of the sentence it is in, its end forward to the end of
   the sentence it is in. A sentence ends after `.`, `!` or `?` followed by
   whitespace, and at a line break.
3. *Bound.* Each edge moves at most `REACH` characters; if that bound falls
   inside a word (a run of non-space characters), the edge moves on to the
   word's end, at most `WORD` more characters, and cuts the word only beyond
   that. So a value of up to `WORD` characters that touches a region is never
   cut by the bound.
4. Overlapping or touching regions merge. Regions lie inside the string and
   do not overlap, so a result's regions together are never longer than the
   result: remembering them at most doubles what a flagged result counts
   against the session's bound (`Gate(remember=...)`).

Masked findings (`@redact`) stay masked in a region as in the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from warded.scanners.base import Finding, mask_text, merge_intervals

SCANNER = "injection"  # the output scanner whose findings mark regions
ASKS = frozenset(
    {
        "action_request",
        "bulk_request",
        "about_user",
        "tool_reference",
        "tool_action",
        "authority_claim",
    }
)
GAP = 400  # characters between two signals of one cluster, at most
REACH = 200  # characters an edge moves to reach its sentence's boundary, at most
WORD = 64  # characters an edge moves further so as not to cut a word, at most

_END = re.compile(r"[.!?](?=\s)|\n")  # a sentence ends after this
_SPACE = re.compile(r"\s")


def regions(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The flagged regions of `text` (module docstring) for signals at `spans`."""
    n = len(text)
    clusters: list[tuple[int, int]] = []
    for start, end in sorted((max(0, min(s, n)), max(0, min(e, n))) for s, e in spans):
        if clusters and start <= clusters[-1][1] + GAP:
            clusters[-1] = (clusters[-1][0], max(clusters[-1][1], end))
        else:
            clusters.append((start, end))
    return merge_intervals([(_back(text, s), _forward(text, e)) for s, e in clusters if e > s])


def _back(text: str, start: int) -> int:
    """Where the sentence holding `start` begins, at most REACH (then WORD) back."""
    floor = max(0, start - REACH)
    last: re.Match[str] | None = None
    for m in _END.finditer(text, floor, min(len(text), start + 1)):  # +1: the lookahead
        if m.end() <= start:
            last = m
    if last is not None:
        return last.end()
    edge = floor  # the bound: do not cut the word it falls in
    while edge > max(0, floor - WORD) and not _SPACE.match(text[edge - 1]):
        edge -= 1
    return edge


def _forward(text: str, end: int) -> int:
    """Where the sentence holding `end - 1` ends, at most REACH (then WORD) on."""
    n = len(text)
    ceiling = min(n, end + REACH)
    m = _END.search(text, max(0, end - 1), ceiling)
    if m is not None:
        return m.end()
    edge = ceiling
    while edge < min(n, ceiling + WORD) and not _SPACE.match(text[edge]):
        edge += 1
    return edge


def flagged_text(text: str, found: Sequence[Finding], masked: Sequence[Finding]) -> list[str]:
    """The text of each flagged region of `text` for the scanner's findings in it
    (those of other scanners and ask kinds are not anchors), with the `masked`
    findings' spans masked."""
    spans = [(f.start, f.end) for f in found if f.scanner == SCANNER and f.kind not in ASKS]
    out = []
    for start, end in regions(text, spans):
        inside = [
            Finding(f.scanner, f.kind, "", max(f.start, start) - start, min(f.end, end) - start, 0)
            for f in masked
            if f.start < end and start < f.end
        ]
        piece = text[start:end]
        out.append(mask_text(piece, inside) if inside else piece)
    return out
