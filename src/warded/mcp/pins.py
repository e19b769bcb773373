"""Pinning upstream definitions against rug pulls: tools, prompts, resources, templates.

A *definition* is everything the model is shown or the gateway relies on: a
tool's name, title, description, schemas, annotations, icons and `_meta`; a
prompt's name, description and arguments; a resource's or resource
template's URI (template), name, title, description, MIME type, icons and
`_meta` (a resource's `size` and `lastModified` are left out: they change
with its content, not its definition). Its pin is a domain-separated
SHA-256 (one domain per kind) of the canonical JSON (RFC 8785) of that
definition. `warded mcp pin` writes the pins of every upstream definition to
a JSON file; the gateway then exposes a definition only while it hashes to
its pin. One that changed (a rug pull), or one never pinned, is *held back*
(quarantined): a tool or prompt is absent from listings and unknown to
calls, a resource or template is not listed and no read is routed through
it, until someone looks at it and pins again.

Definitions with instruction-like or hidden content (the injection scanner
over every string of the definition) are *flagged*: `warded mcp pin` refuses
to pin them unless told to, and the gateway never trusts them on first use.
Without a pins file, a definition is trusted as it is first seen (unless
flagged), and a later change holds it back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types

from warded.canonical import canonical_json, digest
from warded.mcp.config import GatewayConfigError, exposed_name
from warded.scanners.base import scan_value
from warded.scanners.injection import InjectionScanner

FORMAT = "warded-mcp-pins/1"
Definition = types.Tool | types.Prompt | types.Resource | types.ResourceTemplate
# each kind of definition: its pins-file section (the domain of its hash is warded.mcp.<kind>.v1)
SECTIONS = {"tool": "tools", "prompt": "prompts", "resource": "resources", "template": "templates"}
Audit = Callable[[str, Mapping[str, Any]], None]

log = logging.getLogger("warded.mcp")


def kind_of(item: Definition) -> str:
    if isinstance(item, types.Tool):
        return "tool"
    if isinstance(item, types.Prompt):
        return "prompt"
    return "resource" if isinstance(item, types.Resource) else "template"


def name_of(upstream: str, item: Definition) -> str | None:
    """The name a definition is pinned under: a tool's or prompt's exposed name
    (`<upstream>__<name>`), a resource's or template's upstream and URI (template)
    separated by a space; None when it cannot be exposed."""
    if isinstance(item, types.Tool | types.Prompt):
        return exposed_name(upstream, item.name)
    uri = str(item.uri) if isinstance(item, types.Resource) else item.uri_template
    return f"{upstream} {uri}"


def definition(item: Definition) -> dict[str, Any]:
    """The parts of a listed definition that are pinned, as JSON."""
    body = item.model_dump(by_alias=True, mode="json", exclude_none=True)
    if isinstance(item, types.Resource):
        body.pop("size", None)
        annotations = body.pop("annotations", {})
        annotations.pop("lastModified", None)
        if annotations:
            body["annotations"] = annotations
    return body


def pin_of(item: Definition) -> str:
    """The canonical hash of a definition."""
    return digest(f"warded.mcp.{kind_of(item)}.v1", canonical_json(definition(item)))


def flags(item: Definition) -> list[str]:
    """Where the definition reads like instructions or hides text: 'path: kind' lines."""
    found = scan_value([InjectionScanner()], definition(item))
    return sorted({f"{f.path or '(root)'}: {f.kind}" for f in found})


@dataclass(frozen=True, slots=True)
class Pins:
    """Pins by kind and name (`name_of`)."""

    pins: Mapping[str, Mapping[str, str]]

    def get(self, kind: str, name: str) -> str | None:
        return self.pins.get(kind, {}).get(name)

    @classmethod
    def read(cls, path: Path) -> Pins | None:
        """The pins in `path`, or None when there is no such file yet. A file written
        before prompts, resources and templates were pinned has their sections missing:
        none of those is pinned then."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise GatewayConfigError(f"{path}: cannot read pins: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise GatewayConfigError(f"{path}: not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or "tools" not in data:
            raise GatewayConfigError(f"{path}: not a pins file of format {FORMAT}")
        pins: dict[str, dict[str, str]] = {}
        for kind, section in SECTIONS.items():
            entries = data.get(section, {})
            if not isinstance(entries, dict):
                raise GatewayConfigError(f"{path}: {section} is not an object")
            pins[kind] = {}
            for name, entry in entries.items():
                pin = entry.get("sha256") if isinstance(entry, dict) else None
                if not isinstance(pin, str):
                    raise GatewayConfigError(f"{path}: {section}.{name}.sha256 is missing")
                pins[kind][name] = pin
        return cls(pins)

    @staticmethod
    def write(path: Path, listed: Sequence[tuple[str, Definition]]) -> None:
        """Write the pins (and the definitions, for review and diffs) atomically;
        `listed` holds each definition with its name (`name_of`)."""
        body: dict[str, Any] = {"format": FORMAT, **{s: {} for s in SECTIONS.values()}}
        for name, item in listed:
            entry = {"sha256": pin_of(item), "definition": definition(item)}
            body[SECTIONS[kind_of(item)]][name] = entry
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)


class Vetting:
    """Which upstream definitions may be exposed now; the others are held back, each
    hold audited (`mcp.quarantine`) once per reason and definition."""

    def __init__(self, pins: Pins | None, audit: Audit) -> None:
        self.pins = pins
        self._audit = audit
        self._first_seen: dict[tuple[str, str], str] = {}  # trusted on first use, no pins file
        self.held: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, name) -> (reason, pin)

    def admit(self, upstream: str, name: str, item: Definition) -> str | None:
        """The definition's pin if it may be exposed, else None (and it is held back)."""
        pin = pin_of(item)
        reason = self._untrusted((kind_of(item), name), item, pin)
        if reason is not None:
            self.hold(upstream, name, item, reason, pin)
            return None
        self.held.pop((kind_of(item), name), None)
        return pin

    def _untrusted(self, key: tuple[str, str], item: Definition, pin: str) -> str | None:
        """Why a definition may not be exposed, or None if it matches its pin."""
        if self.pins is not None:
            expected = self.pins.get(*key)
            if expected is None:
                return "not pinned"
            return None if expected == pin else "definition differs from its pin"
        first = self._first_seen.get(key)
        if first is None:
            if flags(item):
                return "flagged by the injection scanner; pin it explicitly to trust it"
            self._first_seen[key] = pin
            return None
        return None if first == pin else "definition changed since it was first seen"

    def hold(self, upstream: str, name: str, item: Definition, reason: str, pin: str) -> None:
        """Hold a definition back (also one the gate could not take), audited once."""
        kind = kind_of(item)
        if self.held.get((kind, name)) == (reason, pin):
            return
        self.held[(kind, name)] = (reason, pin)
        if self.pins is not None:
            expected = self.pins.get(kind, name)
        else:
            expected = self._first_seen.get((kind, name))
        log.warning("quarantined %s %s: %s", kind, name, reason)
        detail = {"upstream": upstream, "kind": kind, "name": name, "reason": reason}
        self._audit("mcp.quarantine", {**detail, "pinned": expected, "seen": pin})
