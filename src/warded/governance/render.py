"""The governance document as Markdown or a self-contained HTML page.

Both come from one list of blocks (headings, paragraphs, nested list items,
tables) built from the document's data, so they always say the same thing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Block:
    kind: str  # "h1" | "h2" | "h3" | "p" | "li" | "table"
    text: str = ""
    level: int = 0
    rows: tuple[tuple[str, ...], ...] = field(default_factory=tuple)


def markdown(doc: Mapping[str, Any]) -> str:
    out: list[str] = []
    previous = ""
    for b in blocks(doc):
        if b.kind != "li" and out and out[-1] != "":
            out.append("")
        if b.kind == "li" and previous not in ("li", "") and out[-1] != "":
            out.append("")
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "li":
            out.append("  " * b.level + "- " + b.text)
        elif b.kind == "table":
            head, *body = b.rows
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
        previous = b.kind
    return "\n".join(out).rstrip() + "\n"


def html_page(doc: Mapping[str, Any]) -> str:
    title = f"Governance document, policy bundle {doc['bundle_version']}"
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}</style>",
        "</head><body>",
    ]
    depth = 0
    for b in blocks(doc):
        want = b.level + 1 if b.kind == "li" else 0
        while depth < want:
            out.append("<ul>")
            depth += 1
        while depth > want:
            out.append("</ul>")
            depth -= 1
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{_inline(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "li":
            out.append(f"<li>{_inline(b.text)}</li>")
        elif b.kind == "table":
            head, *body = b.rows
            out.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in head) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
            out.append("</table>")
    out += ["</ul>"] * depth
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Markdown's `code` and **bold** as HTML; everything else escaped."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]*)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def blocks(doc: Mapping[str, Any]) -> Iterator[Block]:
    yield Block("h1", f"Governance document: policy bundle `{doc['bundle_version']}`")
    yield Block(
        "p",
        f"Generated {doc['generated']} from the policies themselves "
        f"({', '.join(doc['policy_files'])}): every permission below is stated from the "
        "parsed policies and entities of this bundle version, and a condition that could "
        "not be put into words is shown as Cedar. Anything not listed is denied.",
    )
    for agent in doc["agents"]:
        yield from _agent(agent)


def _agent(a: Mapping[str, Any]) -> Iterator[Block]:
    yield Block("h2", f"Agent `{a['principal']}`")
    if not a["known"]:
        yield Block("p", "This agent is not an entity of the bundle.")
    elif a["member_of"]:
        yield Block("p", "Member of " + ", ".join(f"`{m}`" for m in a["member_of"]) + ".")
    names = [t["tool"] for t in a["tools"]]
    yield Block(
        "p",
        f"May use {len(names)} tool{'' if len(names) == 1 else 's'}: "
        + (", ".join(f"`{n}`" for n in names) or "none")
        + ".",
    )
    for tool in a["tools"]:
        yield Block("h3", f"`{tool['tool']}`")
        yield Block("p", "Allowed when one of these permits applies:")
        for p in tool["allowed_by"]:
            yield from _policy(p)
        if tool["forbidden_by"]:
            yield Block("p", "But never when one of these forbids applies (a forbid always wins):")
            for p in tool["forbidden_by"]:
                yield from _policy(p)
    if a["unavailable"]:
        yield Block("h3", "Tools it may not use")
        yield Block("p", "These tools do not exist for this agent: they are never listed to it.")
        for u in a["unavailable"]:
            yield Block("li", f"`{u['tool']}`: {u['why']}")
            for p in u["forbidden_by"]:
                yield Block("li", _headline(p), 1)
    yield Block("h3", "Approvals")
    if not a["approvals"]:
        yield Block("p", "No call of this agent needs a person's approval.")
    else:
        rows = [("approver group", "approvers", "needed by")]
        for g in a["approvals"]:
            needed = "; ".join(
                f"**{p['policy']}** on {', '.join(f'`{t}`' for t in p['tools'])}"
                for p in g["policies"]
            )
            rows.append((f"`{g['group']}`", ", ".join(g["approvers"]) or "(nobody)", needed))
        yield Block("table", rows=tuple(rows))
    yield Block("h3", "Limits")
    if not a["limits"]:
        yield Block("p", "No rate or budget limit applies to this agent.")
    else:
        rows = [("limit", "what it allows", "tools that draw on it")]
        for lim in a["limits"]:
            tools = ", ".join(f"`{t}`" for t in lim["tools"])
            rows.append((f"**{lim['id']}** (`{lim['limit']}`)", lim["text"], tools))
        yield Block("table", rows=tuple(rows))


def _headline(p: Mapping[str, Any]) -> str:
    who = f", owner {p['owner']}" if p["owner"] else ""
    text = p["description"] or "(no @description)"
    return f"**{p['id']}** ({p['where']}{who}): {text}"


def _policy(p: Mapping[str, Any]) -> Iterator[Block]:
    yield Block("li", _headline(p))
    for scope in (p["principal"], p["resource"]):
        if scope:
            yield Block("li", f"only if {scope}", 1)
    for c in p["conditions"]:
        lead = "when" if c["kind"] == "when" else "unless"
        if p["effect"] == "permit":
            lead = "only when" if c["kind"] == "when" else "except when"
        yield Block("li", f"{lead} {c['text']}", 1)
    if not p["conditions"] and p["effect"] == "forbid":
        yield Block("li", "always", 1)
    o = p["obligations"]
    if "approval" in o:
        yield Block("li", f"needs approval from group `{o['approval']}` (see Approvals)", 1)
    for kind in ("rate", "budget"):
        if kind in o:
            yield Block("li", f"counts against **{o[kind]}** (see Limits)", 1)
    if "redact" in o:
        yield Block("li", f"its results are redacted for {', '.join(o['redact'])}", 1)
