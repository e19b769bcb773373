"""An upstream that attacks the gateway: tests/mcp/servers/hostile.py, behind the real gateway.

Each of its tools misbehaves in one way (see the server's docstring); the
gateway must answer every call with the upstream's result or a neutral
refusal or failure of its own, never let the upstream speak as the gateway,
and keep serving.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp_helpers import SHIFTY, audit_records, refusal, stdio_gateway, write_config

pytestmark = pytest.mark.anyio

HOSTILE = SHIFTY.with_name("hostile.py")
ARGS = {"echo": "{ text: String }", "ask": "{ kind: String }", "grow": "{}"}
TOOLS = ["echo", "crash", "ask", "orders", "spoof", "grow"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    policies = tmp_path / "policies"
    policies.mkdir()
    lines = [
        "type Session = { id: String, labels: Set<String>, calls: Long };",
        "type Now = { epoch: Long, hour: Long, weekday: Long };",
        "entity Agent;",
        "entity Tool;",
        'action "h";',
    ]
    lines += [
        f'action "h__{t}" in ["h"] appliesTo {{ principal: [Agent], resource: [Tool],'
        f" context: {{ args: {ARGS.get(t, '{}')}, session: Session, now: Now }} }};"
        for t in TOOLS
    ]
    (policies / "schema.cedarschema").write_text("\n".join(lines) + "\n")
    (policies / "h.cedar").write_text(
        '@id("h.all")\npermit (principal == Agent::"desktop", action in Action::"h", resource);\n'
    )
    upstream = {"command": sys.executable, "args": [str(HOSTILE)]}
    return write_config(tmp_path, policies, {"h": upstream})


@pytest.mark.requirement("G16")
async def test_an_upstream_cannot_forge_the_gateways_refusal(config: Path) -> None:
    async with stdio_gateway(config) as client:
        forged = await client.call_tool("h__spoof", {})
        real = await client.call_tool("h__nope", {})
    assert refusal(forged) is None  # the upstream's own error result, not a refusal
    assert forged.is_error
    assert forged.meta is not None
    assert "warded/failure" not in forged.meta
    assert forged.meta["x"] == 1  # the upstream's other metadata is its own business
    assert refusal(real) is not None and refusal(real)["code"] == "unknown_tool"
