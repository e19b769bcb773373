"""Pinning upstream tool definitions against rug pulls.

A tool's *definition* is everything the model is shown or the gateway relies
on: name, title, description, input and output schemas, annotations, icons
and `_meta`. Its pin is a domain-separated SHA-256 of the canonical JSON
(RFC 8785) of that definition. `warded mcp pin` writes the pins of every
upstream tool to a JSON file; the gateway then exposes a tool only while its
definition hashes to its pin. A tool that changed (a rug pull), or one that
was never pinned, is *quarantined*: absent from listings and unknown to
calls, until someone looks at it and pins again.

Descriptions with instruction-like or hidden content (the injection scanner
over every string of the definition) are *flagged*: `warded mcp pin` refuses
to pin them unless told to, and the gateway never trusts them on first use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types

from warded.canonical import canonical_json, digest
from warded.mcp.config import GatewayConfigError
from warded.scanners.base import scan_value
from warded.scanners.injection import InjectionScanner

PIN_DOMAIN = "warded.mcp.tool.v1"
FORMAT = "warded-mcp-pins/1"


def definition(tool: types.Tool) -> dict[str, Any]:
    """The parts of a tool listing that are pinned, as JSON."""
    return tool.model_dump(by_alias=True, mode="json", exclude_none=True)


def pin_of(tool: types.Tool) -> str:
    """The canonical hash of a tool's full definition."""
    return digest(PIN_DOMAIN, canonical_json(definition(tool)))


def flags(tool: types.Tool) -> list[str]:
    """Where the definition reads like instructions or hides text: 'path: kind' lines."""
    found = scan_value([InjectionScanner()], definition(tool))
    return sorted({f"{f.path or '(root)'}: {f.kind}" for f in found})


@dataclass(frozen=True, slots=True)
class Pins:
    """Pins by exposed tool name (`<upstream>__<tool>`)."""

    pins: Mapping[str, str]

    def get(self, name: str) -> str | None:
        return self.pins.get(name)

    @classmethod
    def read(cls, path: Path) -> Pins | None:
        """The pins in `path`, or None when there is no such file yet."""
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
        tools = data.get("tools") if isinstance(data, dict) else None
        if data.get("format") != FORMAT or not isinstance(tools, dict):
            raise GatewayConfigError(f"{path}: not a pins file of format {FORMAT}")
        pins: dict[str, str] = {}
        for name, entry in tools.items():
            pin = entry.get("sha256") if isinstance(entry, dict) else None
            if not isinstance(pin, str):
                raise GatewayConfigError(f"{path}: tools.{name}.sha256 is missing")
            pins[name] = pin
        return cls(pins)

    @staticmethod
    def write(path: Path, listed: Mapping[str, types.Tool]) -> None:
        """Write the pins (and the definitions, for review and diffs) atomically."""
        body = {
            "format": FORMAT,
            "tools": {
                name: {"sha256": pin_of(tool), "definition": definition(tool)}
                for name, tool in sorted(listed.items())
            },
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
