"""Poisoned tool descriptions: flagged by the injection scanner when pinning, never trusted on
first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_helpers import WAIT, audit_records, shifty, stdio_gateway, write_config
from test_sessions_and_changes import _bundle, _names

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
    assert "flagged web__weather: description: instruction_override" in refused.stderr
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
