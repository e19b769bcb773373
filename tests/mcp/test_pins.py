"""Poisoned or changed definitions — of tools, and of the prompts, resources and resource
templates the config forwards — flagged by the injection scanner when pinning, never trusted
on first use, held back when they differ from their pins (tests/mcp/servers/shifty.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError
from mcp_helpers import (
    WAIT,
    audit_records,
    shifty,
    stdio_gateway,
    write_config,
    write_schema,
)
from test_sessions_and_changes import Changes, _bundle, _names

pytestmark = pytest.mark.anyio


def _pin(config: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warded.cli", "mcp", "pin", str(config), *more],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def test_pin_refuses_a_flagged_description_unless_told_to_pin_it(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, _bundle(tmp_path), {"web": shifty(poisoned=True)}, extra='pins = "pins.json"'
    )
    refused = _pin(config)
    assert refused.returncode != 0
    assert "flagged tool web__weather: description: instruction_override" in refused.stderr
    assert set(json.loads((tmp_path / "pins.json").read_text())["tools"]) == {
        "web__fetch",
        "web__publish",
    }
    allowed = _pin(config, "--allow-flagged")
    assert allowed.returncode == 0, allowed.stderr
    assert "web__weather" in json.loads((tmp_path / "pins.json").read_text())["tools"]


async def test_a_flagged_description_is_never_trusted_on_first_use(tmp_path: Path) -> None:
    config = write_config(tmp_path, _bundle(tmp_path), {"web": shifty(poisoned=True)})
    async with stdio_gateway(config) as client:
        assert await _names(client) == {"web__fetch", "web__publish"}
    quarantined = [
        r["detail"]
        for r in audit_records(tmp_path / "audit.db")
        if r["kind"] == "event" and r["detail"]["event"] == "mcp.quarantine"
    ]
    assert [q["name"] for q in quarantined] == ["web__weather"]
    assert "injection scanner" in quarantined[0]["reason"]


def _forwarding(folder: Path, pins: bool = False, **flags: bool) -> Path:
    """shifty with its resources and prompts forwarded, every action of it permitted."""
    policies = folder / "policies"
    policies.mkdir()
    upstream = {**shifty(**flags), "resources": True, "prompts": True}
    config = write_config(folder, policies, {"web": upstream}, extra='pins = "pins.json"' * pins)
    write_schema(config, policies)
    (policies / "web.cedar").write_text(
        'permit (principal == Agent::"desktop", action in Action::"web", resource);\n'
    )
    return config


async def _offered(client: Any) -> tuple[set[str], set[str], set[str]]:
    """The prompts, resources and templates the client is shown."""
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    templates = (await client.list_resource_templates()).resource_templates
    return prompts, resources, {t.uri_template for t in templates}


def _held(folder: Path) -> list[tuple[str, str, str]]:
    return [
        (r["detail"]["kind"], r["detail"]["name"], r["detail"]["reason"])
        for r in audit_records(folder / "audit.db")
        if r["kind"] == "event" and r["detail"]["event"] == "mcp.quarantine"
    ]


OFFERED = ({"web__brief"}, {"shifty://notes/1"}, {"shifty://notes/{id}"})
NOTHING: tuple[set[str], set[str], set[str]] = (set(), set(), set())


def test_pin_covers_prompts_resources_and_templates_and_refuses_flagged_ones(
    tmp_path: Path,
) -> None:
    config = _forwarding(tmp_path, pins=True, poisoned=True)
    refused = _pin(config)
    assert refused.returncode != 0
    for flagged in (
        "prompt web__brief: description: instruction_override",
        "prompt web__brief: arguments/0/description: instruction_override",
        "resource web shifty://notes/1: description: instruction_override",
        "template web shifty://notes/{id}: description: instruction_override",
    ):
        assert f"flagged {flagged}" in refused.stderr
    pins = json.loads((tmp_path / "pins.json").read_text())
    assert (pins["prompts"], pins["resources"], pins["templates"]) == ({}, {}, {})
    assert _pin(config, "--allow-flagged").returncode == 0
    pins = json.loads((tmp_path / "pins.json").read_text())
    assert set(pins["prompts"]) == {"web__brief"}
    assert set(pins["resources"]) == {"web shifty://notes/1"}
    assert set(pins["templates"]) == {"web shifty://notes/{id}"}


async def test_flagged_prompts_resources_and_templates_are_never_trusted_on_first_use(
    tmp_path: Path,
) -> None:
    config = _forwarding(tmp_path, poisoned=True)
    async with stdio_gateway(config, mode="legacy") as client:
        offered = await _offered(client)
        with pytest.raises(MCPError) as got:
            await client.get_prompt("web__brief", {"topic": "x"})
        with pytest.raises(MCPError) as listed:
            await client.read_resource("shifty://notes/1")
        with pytest.raises(MCPError) as matched:
            await client.read_resource("shifty://notes/2")
    assert offered == NOTHING
    for refused in (got, listed, matched):
        assert refused.value.data["warded/refusal"]["code"] == "unknown_tool"
    assert {(k, n) for k, n, _ in _held(tmp_path)} == {
        ("tool", "web__weather"),
        ("prompt", "web__brief"),
        ("resource", "web shifty://notes/1"),
        ("template", "web shifty://notes/{id}"),
    }


@pytest.mark.parametrize("upstream", ["2026-07-28", "2025-11-25"])
async def test_a_changed_prompt_resource_or_template_is_held_back_until_pinned_again(
    tmp_path: Path, upstream: str
) -> None:
    config = _forwarding(tmp_path, pins=True, legacy=upstream == "2025-11-25")
    assert _pin(config).returncode == 0
    changes = Changes()
    async with stdio_gateway(config, mode="legacy", message_handler=changes) as client:
        assert "web__weather" in await _names(client)  # told when this listing changes
        before = await _offered(client)
        got = await client.get_prompt("web__brief", {"topic": "x"})
        read = await client.read_resource("shifty://notes/2")
        await client.call_tool("web__fetch", {"url": "https://a.example"})  # the rug pull
        await changes.wait()  # weather is taken away, and the rest was listed again with it
        after = await _offered(client)
        with pytest.raises(MCPError) as again:
            await client.get_prompt("web__brief", {"topic": "x"})
        with pytest.raises(MCPError) as listed:
            await client.read_resource("shifty://notes/1")
        with pytest.raises(MCPError) as matched:
            await client.read_resource("shifty://notes/2")
    assert before == OFFERED
    assert "x" in got.messages[0].content.text  # type: ignore[union-attr]
    assert read.contents
    assert after == NOTHING
    for refused in (again, listed, matched):
        assert refused.value.data["warded/refusal"]["code"] == "unknown_tool"
    assert set(_held(tmp_path)) == {
        (kind, name, "definition differs from its pin")
        for kind, name in [
            ("tool", "web__weather"),
            ("prompt", "web__brief"),
            ("resource", "web shifty://notes/1"),
            ("template", "web shifty://notes/{id}"),
        ]
    }
