"""Trusted text from the MCP client: `_meta["io.warded/trusted"]` on a request.

MCP has no standard field for "this is what the user asked". A host (the
application that runs the model and owns the MCP client) declares the user's
own words for argument provenance by putting, on any request it sends,

    "_meta": {"io.warded/trusted": [{"source": "user", "text": "Pay GB82 WEST …"}]}

The model cannot drive it: a model produces a tool's name and arguments, and
the host's MCP client builds the request around them; `_meta` is the
request's own metadata, never an argument. Arguments that look like the
carrier (an argument named `_meta`, a string holding this JSON) are
arguments and nothing else.

Off unless the principal's config lists source names (`[principals.X] trust
= ["user"]`). A carrier the principal may not send is refused — the whole
request, with a JSON-RPC error (-32602) saying why, and an `mcp.trust_refused`
audit event — rather than ignored: a host that believes it declared the
user's words would otherwise see every target wait for a person with no
clue why, and a carrier from a client that should not send one is worth a
security team's look. A carrier is taken whole or not at all: every entry is
checked before any is remembered (`Gate.trust`, which audits each).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp_types as types

from warded.mcp.forwarded import GatewayError
from warded.provenance import check_source

TRUSTED_META = "io.warded/trusted"
MAX_ENTRIES = 16
_WHERE = f"_meta[{TRUSTED_META!r}]"


def carried(params: Any) -> Any:
    """The carrier's raw value on a request's params, or None when it has none."""
    meta = getattr(params, "meta", None)
    if not isinstance(meta, Mapping):
        return None
    return meta.get(TRUSTED_META)


def declarations(
    value: Any, allowed: frozenset[str], principal: str, limit: int
) -> list[tuple[str, str]]:
    """The (source, text) pairs of a carrier this principal may send; GatewayError (whose
    message says why) for anything else. `limit` bounds the characters of all texts."""
    if not allowed:
        raise _refused(f"this client may not declare trusted text ({principal}.trust is empty)")
    if not isinstance(value, list) or not 0 < len(value) <= MAX_ENTRIES:
        raise _refused(
            f"{_WHERE} must be a list of 1 to {MAX_ENTRIES} objects "
            '{"source": NAME, "text": TEXT} ("source" defaults to "user")'
        )
    found: list[tuple[str, str]] = []
    total = 0
    for i, entry in enumerate(value):
        where = f"{_WHERE}[{i}]"
        if not isinstance(entry, Mapping) or "text" not in entry or set(entry) - {"source", "text"}:
            raise _refused(f"{where} must be an object with text and, optionally, source only")
        source, text = entry.get("source", "user"), entry["text"]
        try:
            check_source(source)
        except ValueError:
            raise _refused(
                f"{where}.source: a trusted source is named in lowercase letters, digits, '_' "
                "and '-', starting with a letter, and is neither 'untrusted' nor starts with 'tool'"
            ) from None
        if source not in allowed:
            listed = ", ".join(sorted(allowed))
            raise _refused(
                f"{where}.source: this client may not declare trusted text as {source!r} "
                f"({principal}.trust: {listed})"
            )
        if not isinstance(text, str) or not text:
            raise _refused(f"{where}.text must be a non-empty string")
        total += len(text)
        if total > limit:
            raise _refused(f"{_WHERE}: the texts have more than the {limit} characters allowed")
        found.append((source, text))
    return found


def _refused(message: str) -> GatewayError:
    return GatewayError(types.INVALID_PARAMS, message)
