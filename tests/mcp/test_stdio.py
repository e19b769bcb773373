"""The gateway over stdio, driven by the Python SDK client, before the real filesystem server.

The bundle is the example's (examples/mcp/policies): read anything, write
only under shared/notes/, never move.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp_helpers import (
    NODE,
    WAIT,
    audit_records,
    copy_example_policies,
    filesystem,
    gateway_command,
    refusal,
    stdio_gateway,
    without_ref,
    write_config,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    (folder / "notes").mkdir(parents=True)
    (folder / "welcome.txt").write_text("hello\n")
    return folder


@pytest.fixture
def config(tmp_path: Path, shared: Path) -> Path:
    return write_config(tmp_path, copy_example_policies(tmp_path), {"fs": filesystem(shared)})


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_only_permitted_tools_are_listed_and_allowed_calls_return_the_upstream_result(
    config: Path, shared: Path, mode: str
) -> None:
    async with stdio_gateway(config, mode=mode) as client:
        downstream = client.protocol_version
        names = {t.name for t in (await client.list_tools()).tools}
        assert "fs__read_text_file" in names
        assert "fs__write_file" in names
        assert "fs__move_file" not in names  # permitted by no policy
        result = await client.call_tool("fs__read_text_file", {"path": str(shared / "welcome.txt")})
    assert not result.is_error
    assert _text(result) == "hello\n"
    # both generations downstream: the handshake, or the stateless protocol when asked
    assert downstream == ("2025-11-25" if mode == "legacy" else "2026-07-28")


@pytest.mark.requirement("G2")
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_hidden_tool_is_refused_exactly_like_a_tool_that_never_existed(
    config: Path, shared: Path, mode: str
) -> None:
    async with stdio_gateway(config, mode=mode) as client:
        hidden = await client.call_tool(
            "fs__move_file",
            {"source": str(shared / "welcome.txt"), "destination": str(shared / "moved.txt")},
        )
        never = await client.call_tool("fs__no_such_tool", {"source": "a", "destination": "b"})
        other = await client.call_tool("nope__move_file", {})
    assert (shared / "welcome.txt").exists()
    assert not (shared / "moved.txt").exists()
    assert refusal(hidden)["code"] == "unknown_tool"  # type: ignore[index]
    assert without_ref(hidden) == without_ref(never) == without_ref(other)
    assert hidden.structured_content is None  # never in structuredContent


async def test_write_outside_the_policy_is_refused_nothing_is_written_and_the_audit_log_has_both(
    config: Path, shared: Path, tmp_path: Path
) -> None:
    target = shared / "welcome.txt"
    note = shared / "notes" / "todo.md"
    async with stdio_gateway(config) as client:
        denied = await client.call_tool("fs__write_file", {"path": str(target), "content": "pwned"})
        traversal = await client.call_tool(
            "fs__write_file", {"path": str(shared / "notes" / ".." / "x.txt"), "content": "pwned"}
        )
        allowed = await client.call_tool(
            "fs__write_file", {"path": str(note), "content": "buy milk"}
        )
    assert denied.is_error
    assert refusal(denied)["code"] == "not_permitted"
    assert json.loads(_text(denied)) == refusal(denied)  # the text is the neutral refusal
    assert refusal(traversal)["code"] == "not_permitted"  # type: ignore[index]
    assert target.read_text() == "hello\n"
    assert not (shared / "x.txt").exists()
    assert not allowed.is_error
    assert note.read_text() == "buy milk"

    records = audit_records(tmp_path / "audit.db")
    decisions = [r for r in records if r["kind"] == "decision" and r["tool"] == "fs__write_file"]
    assert [d["decision"] for d in decisions] == ["deny", "deny", "allow"]
    assert decisions[0]["id"] == refusal(denied)["ref"]  # type: ignore[index]
    assert all(d["detail"]["call_id"].startswith("mcp:") for d in decisions)  # the MCP request
    outcomes = [r for r in records if r["kind"] == "outcome" and r["call"] == decisions[2]["call"]]
    assert [o["outcome"] for o in outcomes] == ["ok"]
    started = [r for r in records if r["kind"] == "event" and r["detail"]["event"] == "mcp.start"]
    assert started[0]["detail"]["tools"]["fs__write_file"]["upstream"] == "fs"
    # server-filesystem (TypeScript SDK 1.x) speaks the handshake era upstream
    assert started[0]["detail"]["protocols"] == {"fs": "2025-11-25"}


async def test_the_clients_roots_never_reach_the_upstream(
    config: Path, shared: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=elsewhere.as_uri())])

    async with stdio_gateway(config, mode="legacy", list_roots_callback=roots) as client:
        result = await client.call_tool("fs__list_allowed_directories", {})
    assert str(shared) in _text(result)
    assert str(elsewhere) not in _text(result)


def test_the_typescript_sdk_client_sees_the_same_gateway(config: Path, shared: Path) -> None:
    calls = [
        ["fs__read_text_file", {"path": str(shared / "welcome.txt")}],
        ["fs__write_file", {"path": str(shared / "welcome.txt"), "content": "pwned"}],
        ["fs__move_file", {"source": str(shared / "welcome.txt"), "destination": "x"}],
    ]
    done = subprocess.run(
        ["node", str(NODE / "ts-client.mjs"), *gateway_command(config), "--", json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )
    answer = json.loads(done.stdout)
    read, write, move = answer["results"]
    assert "fs__write_file" in answer["tools"]
    assert "fs__move_file" not in answer["tools"]
    assert read["content"][0]["text"] == "hello\n"
    assert write["isError"] is True
    assert write["_meta"]["warded/refusal"]["code"] == "not_permitted"
    assert move["_meta"]["warded/refusal"]["code"] == "unknown_tool"
    assert (shared / "welcome.txt").read_text() == "hello\n"


def test_the_schema_does_not_need_the_upstreams_resource_listing(tmp_path: Path) -> None:
    # `warded mcp schema` types actions; a resource listing that fails is none of its business
    from mcp_helpers import shifty, write_schema

    policies = tmp_path / "policies"
    policies.mkdir()
    upstream = {**shifty(broken_resources=True), "resources": True}
    write_schema(write_config(tmp_path, policies, {"web": upstream}), policies)
    assert 'action "web--resource"' in (policies / "schema.cedarschema").read_text()


async def test_an_upstreams_error_text_never_reaches_the_client(tmp_path: Path) -> None:
    from mcp.shared.exceptions import MCPError
    from mcp_helpers import shifty
    from test_sessions_and_changes import SCHEMA

    policies = tmp_path / "policies"
    policies.mkdir()
    schema = SCHEMA + (
        'action "web--resource" in ["web"] appliesTo { principal: [Agent], resource: [Tool],\n'
        "  context: { args: { uri: String }, session: Session, now: Now } };\n"
    )
    (policies / "schema.cedarschema").write_text(schema)
    (policies / "web.cedar").write_text(
        'permit (principal == Agent::"desktop", action in Action::"web", resource);\n'
    )
    upstream = {**shifty(broken_resources=True), "resources": True}
    config = write_config(tmp_path, policies, {"web": upstream})
    async with stdio_gateway(config, mode="legacy") as client:
        listing = await client.list_resources()  # its listing failed: it lists nothing
        with pytest.raises(MCPError) as reading:
            await client.read_resource("shifty://notes/1")
        still = await client.call_tool("web__weather", {"city": "Oslo"})
    assert listing.resources == []
    assert reading.value.data["warded/failure"]["error"] is True  # the gate's neutral failure
    shown = f"{reading.value.message} {reading.value.data}"
    assert "hunter2" not in shown
    assert "/srv/secret" not in shown
    assert not still.is_error  # the gateway keeps serving
    failed = [
        r["detail"]
        for r in audit_records(tmp_path / "audit.db")
        if r["kind"] == "event" and r["detail"]["event"] == "mcp.listing_failed"
    ]
    assert failed == [
        {
            "event": "mcp.listing_failed",
            "upstream": "web",
            "method": "resources/list",
            "error": "MCPError",
        }
    ]
