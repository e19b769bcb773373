"""An upstream that attacks the gateway: tests/mcp/servers/hostile.py, behind the real gateway.

Each of its tools misbehaves in one way (see the server's docstring); the
gateway must answer every call with the upstream's result or a neutral
refusal or failure of its own, never let the upstream speak as the gateway,
and keep serving.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp_helpers import SHIFTY, audit_records, refusal, stdio_gateway, write_config

from warded import Gate, MemoryStore
from warded.errors import StoreError
from warded.mcp import Gateway, load
from warded.model import SessionState

pytestmark = pytest.mark.anyio

HOSTILE = SHIFTY.with_name("hostile.py")
ARGS = {"echo": "{ text: String }", "ask": "{ kind: String }"}
TOOLS = ["echo", "crash", "ask", "orders", "spoof", "claim", "updates"]


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
    assert (refusal(real) or {}).get("code") == "unknown_tool"


async def test_an_upstreams_requests_for_sampling_elicitation_or_roots_never_reach_the_client(
    config: Path,
) -> None:
    asked: list[str] = []

    async def sampling(ctx: Any, params: Any) -> Any:
        asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="yes"), model="m"
        )

    async def elicitation(ctx: Any, params: Any) -> Any:
        asked.append("elicitation")
        return types.ElicitResult(action="accept", content={"password": "hunter2"})

    async def roots(ctx: Any) -> Any:
        asked.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri="file:///home/user")])

    callbacks = {
        "sampling_callback": sampling,
        "elicitation_callback": elicitation,
        "list_roots_callback": roots,
    }
    async with stdio_gateway(config, mode="legacy", **callbacks) as client:
        answers = [
            _text(await client.call_tool("h__ask", {"kind": kind}))
            for kind in ("sampling", "elicitation", "roots")
        ]
    assert all(a.startswith("refused: ") for a in answers), answers
    assert asked == []


@pytest.mark.requirement("G16")
async def test_orders_in_an_upstreams_error_reach_the_model_as_the_neutral_failure(
    config: Path, tmp_path: Path
) -> None:
    async with stdio_gateway(config) as client:
        result = await client.call_tool("h__orders", {})
    assert result.is_error
    assert _failed(result)
    assert "Ignore" not in result.model_dump_json()
    outcomes = [r for r in audit_records(tmp_path / "audit.db") if r.get("tool") == "h__orders"]
    assert [r["kind"] for r in outcomes] == ["decision", "outcome"]


@pytest.mark.requirement("G1")
async def test_an_upstream_that_dies_mid_call_is_a_failure_and_the_gateway_keeps_answering(
    config: Path,
) -> None:
    async with stdio_gateway(config) as client:
        crashed = await client.call_tool("h__crash", {})
        after = await client.call_tool("h__echo", {"text": "still there?"})
        unknown = await client.call_tool("h__nope", {})
        listed = {t.name for t in (await client.list_tools()).tools}
    for result in (crashed, after):
        assert result.is_error
        assert _failed(result)
    assert (refusal(unknown) or {}).get("code") == "unknown_tool"
    assert listed == {f"h__{t}" for t in TOOLS}


def _failed(result: types.CallToolResult) -> bool:
    """Whether the result is the gateway's neutral failure (the tool ran and failed)."""
    return bool((result.meta or {}).get("warded/failure", {}).get("error") is True)


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


class _UnreadableAfterRunning(MemoryStore):
    """A store whose session state cannot be read once a tool's outcome is recorded."""

    def session(self, session_id: str) -> SessionState:
        if any(r.body["kind"] == "outcome" for r in self.records()):
            raise StoreError("the session table is locked")
        return super().session(session_id)


@pytest.mark.requirement("G1")
async def test_a_store_failure_after_the_tool_ran_does_not_hide_its_result(config: Path) -> None:
    # the agent would take an "Internal error" for a failed call and run it again
    loaded = load(config)
    gate = Gate.from_directory(loaded.policies, store=_UnreadableAfterRunning())
    gateway = Gateway(loaded, gate, None)
    desktop = loaded.principal("desktop")
    told: list[str] = []

    async def notify() -> None:
        told.append("list_changed")

    async with gateway.running():
        gateway.attach(desktop, 1, notify)  # a connected client, told when its listing changes
        result = await gateway.call(desktop, "h__echo", {"text": "paid"}, "call-1")
    assert not result.is_error
    assert _text(result) == "paid"


@pytest.mark.requirement("G1")
async def test_a_tool_definition_the_gate_cannot_take_is_quarantined_not_fatal(
    config: Path, tmp_path: Path
) -> None:
    async with stdio_gateway(config) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        deep = await client.call_tool("h__deep", {"a": []})
        echo = await client.call_tool("h__echo", {"text": "still here"})
    assert listed == {f"h__{t}" for t in TOOLS}
    assert (refusal(deep) or {}).get("code") == "unknown_tool"
    assert _text(echo) == "still here"
    events = [r["detail"] for r in audit_records(tmp_path / "audit.db") if r["kind"] == "event"]
    quarantined = [e for e in events if e["event"] == "mcp.quarantine"]
    assert [e["name"] for e in quarantined] == ["h__deep"]
