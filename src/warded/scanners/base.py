"""Findings, the scanner protocol, and the walk over JSON-like values.

A scanner looks at one string and returns findings with spans in that
string. `scan_value` runs scanners over every string of a call's arguments or
a tool's result — every string value and every dictionary key — and records
where each string sits (`path`); `redact` masks the findings' spans; `summary`
is what the policy sees as `context.scan`.

A path is the keys and list indexes from the root joined with "/", each key
escaped as in a JSON Pointer (RFC 6901: "~" as "~0", "/" as "~1"); "" is the
root string itself. That names a *value*. A *key* is named by its value's path
followed by `KEY`, the segment "~" (which no escaped key can be): in
`{"a": {"b": 1}}` the key "b" is at "a/b/~", its value at "a/b". Keys are
scanned like values and their findings count in `summary` alike, since where a
schema admits free keys (`additionalProperties`, a `dict[str, X]`) a key
carries what a value can. `redact` replaces a key that has a finding with its
masked text, made distinct (`#2`, `#3`, …) from every other key of its
mapping. A scanner whose `joins_siblings` is true (the secrets scanner) also
reads the concatenation of sibling string values (not keys), so a value split
across two arguments or two list items is found and every part of it is
masked.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

BUILTIN_NAMES = ("secrets", "pii", "injection")
MASK = "[redacted:{kind}]"
KEY = "~"  # the last segment of a key's own path (module docstring)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a scanner found: what, where, and how sure.

    `start`/`end` delimit the full matched span in the string at `path`
    (never a partial value); `score` is in [0, 1], as each scanner documents.
    """

    scanner: str
    kind: str
    path: str
    start: int
    end: int
    score: float


@runtime_checkable
class Scanner(Protocol):
    """Anything with a `name` and a `scan(text)` returning findings with path "".

    Plug-ins implement this; a plug-in named like a built-in ("secrets",
    "pii", "injection") contributes to that key of `summary`.
    """

    name: str

    def scan(self, text: str) -> list[Finding]: ...


def scan_value(
    scanners: Sequence[Scanner], value: Any, declared: Container[str] = ()
) -> list[Finding]:
    """Every scanner's findings on every string value and key in `value`, with `path` set.

    Walks dicts (each key, then its value), lists and tuples at any depth;
    other leaves (numbers, booleans, None) are skipped. Findings come in walk
    order, then scanner order, then as each scanner returned them. A scanner's
    findings are a function of the text: a string that occurs again in `value`
    is scanned once and its findings repeated at each of its paths. Then, for
    each scanner with `joins_siblings` set and each container with two or more
    non-empty string values among its direct children, they are joined with
    nothing between them and scanned with `scan(joined, cuts=offsets)` (the
    scanner reports only what crosses a cut); a finding that crosses from one
    string into the next becomes one finding per string it covers, each
    clamped to its string.

    A key of the root mapping that is in `declared` (a tool's parameter names,
    from its JSON Schema) is not scanned: its text is the tool's, not the
    caller's, and skipping it keeps a call with fixed parameters as cheap as
    when keys were not scanned. Keys at any other depth are always scanned.
    """
    out: list[Finding] = []
    once: dict[str, list[Finding]] = {}  # a text that recurs (a key of every row) is read once
    for path, text in _strings(value, "", declared):
        found = once.get(text)
        if found is None:
            found = once[text] = [f for scanner in scanners for f in scanner.scan(text)]
        out.extend(replace(f, path=path) for f in found)
    joining = [s for s in scanners if getattr(s, "joins_siblings", False)]
    if joining:
        for group in _siblings(value, ""):
            out.extend(_across(joining, group))
    return out


def _across(scanners: Sequence[Scanner], group: list[tuple[str, str]]) -> Iterable[Finding]:
    """Findings on the joined strings of `group` that cross a boundary, split per string."""
    joined = "".join(text for _, text in group)
    offsets = []
    pos = 0
    for _, text in group:
        offsets.append(pos)
        pos += len(text)
    for scanner in scanners:
        for f in scanner.scan(joined, cuts=offsets[1:]):  # type: ignore[call-arg]
            parts = [
                (path, max(f.start - at, 0), min(f.end - at, len(text)))
                for (path, text), at in zip(group, offsets, strict=True)
                if at < f.end and f.start < at + len(text)
            ]
            if len(parts) > 1:
                yield from (replace(f, path=p, start=s, end=e) for p, s, e in parts)


def redact(value: Any, findings: Sequence[Finding], mask: str = MASK) -> Any:
    """A copy of `value` with every finding's span masked; structure preserved.

    Overlapping or touching spans at one path are merged into a single mask,
    whose `{kind}` is the merged findings' kinds, sorted and joined with "+".
    Spans are clamped to the string, so a stale finding never leaves a tail
    unmasked. A key with a finding becomes its masked text, with `#2`, `#3`, …
    appended where that text is already a key of the mapping (one left as it
    is, or one masked before it in the mapping's order). Dicts come back as
    dicts, tuples as tuples, other sequences as lists; non-string leaves are
    returned as they are.
    """
    by_path: dict[str, list[Finding]] = {}
    for f in findings:
        by_path.setdefault(f.path, []).append(f)
    return _rebuild(value, "", by_path, mask)


def found_text(value: Any, finding: Finding) -> str:
    """The text a finding covers in `value` ("" if its path no longer leads to a string)."""
    return text_at(value, finding.path)[finding.start : finding.end]


def is_key(path: str) -> bool:
    """Whether `path` names a key itself (it ends in `KEY`), not a value."""
    return path.endswith(f"/{KEY}")


def text_at(value: Any, path: str) -> str:
    """The string at `path` (a scanned string's path, a value's or a key's) in `value`,
    "" if none is there."""
    parts = path.split("/") if path else []
    is_key = parts[-1:] == [KEY]
    if is_key:
        parts.pop()
    node = value
    for i, part in enumerate(parts):
        key = _unescape(part)
        if is_key and i == len(parts) - 1:
            return key if isinstance(node, Mapping) and key in node else ""
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, Sequence) and not isinstance(node, str) and key.isdigit():
            node = node[int(key)] if int(key) < len(node) else None
        else:
            return ""
    return node if isinstance(node, str) and not is_key else ""


def shown_paths(value: Any, shown: Any, paths: Iterable[str]) -> list[str]:
    """Each of `paths` (into `value`) as it reads in `shown`, `redact(value, …)`: each
    key on the way replaced by the key it became."""
    became: dict[int, dict[Any, Any]] = {}  # per mapping of `value`: its keys' new names
    out = []
    for path in paths:
        parts: list[str] = []
        node, into = value, shown
        for part in path.split("/") if path else ():
            if part == KEY:
                parts.append(part)
            elif isinstance(node, Mapping) and isinstance(into, Mapping):
                names = became.get(id(node))
                if names is None:
                    names = became[id(node)] = dict(zip(node, into, strict=True))
                key = _unescape(part)
                parts.append(_escape(str(names[key])))
                node, into = node[key], into[names[key]]
            else:
                parts.append(part)
                node, into = node[int(part)], into[int(part)]
        out.append("/".join(parts))
    return out


def summary(findings: Sequence[Finding], names: Iterable[str] = BUILTIN_NAMES) -> dict[str, bool]:
    """For each of `names` (by default the three built-ins), whether it has a finding.

    This is the Cedar context `context.scan`, with exactly the fields the
    action declares; findings of other scanners are not summarised.
    """
    seen = {f.scanner for f in findings}
    return {name: name in seen for name in names}


def merge_intervals(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching (start, end) intervals merged, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def merge_spans(findings: Sequence[Finding], length: int) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kinds) covering every finding's span, clamped to `length`."""
    spans = sorted(
        (max(0, min(f.start, length)), max(0, min(f.end, length)), f.kind) for f in findings
    )
    merged: list[tuple[int, int, set[str]]] = []
    for start, end, kind in spans:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2] | {kind})
        else:
            merged.append((start, end, {kind}))
    return [(s, e, "+".join(sorted(k))) for s, e, k in merged]


def mask_text(text: str, findings: Sequence[Finding], mask: str = MASK) -> str:
    """`text` with the findings' spans masked (their `path` is ignored)."""
    parts: list[str] = []
    pos = 0
    for start, end, kinds in merge_spans(findings, len(text)):
        parts.append(text[pos:start])
        parts.append(mask.format(kind=kinds))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _join(path: str, key: str) -> str:
    return f"{path}/{key}" if path else key


def _strings(value: Any, path: str, declared: Container[str] = ()) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    out: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            at = _join(path, _escape(str(k)))
            if k not in declared:
                out.append((f"{at}/{KEY}", str(k)))
            out.extend(_strings(v, at))
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for i, v in enumerate(value):
            out.extend(_strings(v, _join(path, str(i))))
    return out


def _siblings(value: Any, path: str) -> Iterable[list[tuple[str, str]]]:
    """Per container, its direct children that are non-empty strings (two or more), in order."""
    if isinstance(value, Mapping):
        children = [(_join(path, _escape(str(k))), v) for k, v in value.items()]
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        children = [(_join(path, str(i)), v) for i, v in enumerate(value)]
    else:
        return
    strings = [(p, v) for p, v in children if isinstance(v, str) and v]
    if len(strings) > 1:
        yield strings
    for p, v in children:
        if not isinstance(v, str):
            yield from _siblings(v, p)


def _rebuild(value: Any, path: str, by_path: dict[str, list[Finding]], mask: str) -> Any:
    if isinstance(value, str):
        found = by_path.get(path)
        return mask_text(value, found, mask) if found else value
    if isinstance(value, Mapping):
        keys = _keys(value, path, by_path, mask)
        return {
            key: _rebuild(v, _join(path, _escape(str(k))), by_path, mask)
            for key, (k, v) in zip(keys, value.items(), strict=True)
        }
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = [_rebuild(v, _join(path, str(i)), by_path, mask) for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def _keys(
    value: Mapping[Any, Any], path: str, by_path: dict[str, list[Finding]], mask: str
) -> list[Any]:
    """The keys of `value` as `redact` leaves them: those with a finding masked, each
    distinct from every other (`redact`)."""
    keys = list(value)
    masked: dict[int, str] = {}
    for i, k in enumerate(keys):
        found = by_path.get(f"{_join(path, _escape(str(k)))}/{KEY}")
        if found:
            masked[i] = mask_text(str(k), found, mask)
    if not masked:
        return keys
    taken = {str(k) for i, k in enumerate(keys) if i not in masked}
    last: dict[str, int] = {}  # per masked text, its last suffix: n keys alike cost O(n)
    for i, text in masked.items():
        n = last.get(text, 1)
        key = text if n == 1 else f"{text}#{n}"
        while key in taken:
            n += 1
            key = f"{text}#{n}"
        last[text] = n
        taken.add(key)
        keys[i] = key
    return keys


def builtin_scanner(name: str) -> Scanner:
    """A new built-in scanner by name ("secrets", "pii", "injection").

    Raises ImportError naming the extra to install when its libraries are missing.
    """
    if name == "secrets":
        from warded.scanners.secrets import SecretsScanner

        return SecretsScanner()
    if name == "pii":
        from warded.scanners.pii import PiiScanner

        return PiiScanner()
    if name == "injection":
        from warded.scanners.injection import InjectionScanner

        return InjectionScanner()
    raise LookupError(f"no built-in scanner named {name!r}")
