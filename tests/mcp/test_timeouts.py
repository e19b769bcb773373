"""A hung upstream (tests/mcp/servers/stuck.py: it accepts requests and never answers
them until released) holds nothing longer than its configured `timeout`, and nothing
of the gateway's other upstreams at all.

A tool call that times out was received upstream, which may have acted on it: it
is recorded as a tool that raised (outcome `error`), so its approval stays used and
its rate slot and budget stay counted, as for any tool that fails after it started
(a call that never ran, such as one whose decision timed out, gives them back).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp_helpers import (
    SHIFTY,
    WAIT,
    audit_records,
    node_bin,
    refusal,
    stdio_gateway,
    write_config,
    write_schema,
)

pytestmark = pytest.mark.anyio

STUCK = SHIFTY.with_name("stuck.py")
POLICIES = """
@id("stuck.all")
permit (principal == Agent::"desktop", action in Action::"stuck", resource);

@id("stuck.hang")
@budget("args.amount 100/day")
permit (principal == Agent::"desktop", action == Action::"stuck__hang", resource);
"""
EV = '@id("ev.all")\npermit (principal == Agent::"desktop", action in Action::"ev", resource);\n'


def _config(folder: Path, timeout: float, **more: dict[str, Any]) -> Path:
    policies = folder / "policies"
    policies.mkdir()
    stuck = {"command": sys.executable, "args": [str(STUCK)], "resources": True, "prompts": True}
    config = write_config(folder, policies, {"stuck": {**stuck, "timeout": timeout}, **more})
    write_schema(config, policies)
    (policies / "all.cedar").write_text(POLICIES + (EV if more else ""))
    return config


def _failed(result: types.CallToolResult) -> bool:
    return bool((result.meta or {}).get("warded/failure", {}).get("error") is True)


@pytest.mark.requirement("G10")
async def test_a_call_a_hung_upstream_never_answers_fails_at_the_timeout_and_keeps_its_budget(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, timeout=2)
    async with stdio_gateway(config, mode="legacy") as client:
        with anyio.fail_after(WAIT):
            hung = await client.call_tool("stuck__hang", {"amount": 60})
        # the upstream may have acted on it: the 60 stay spent
        over = await client.call_tool("stuck__hang", {"amount": 60})
        with anyio.fail_after(WAIT):
            frozen = await client.call_tool("stuck__freeze", {})
            with pytest.raises(MCPError) as read:
                await client.read_resource("stuck://note")
            with pytest.raises(MCPError) as got:
                await client.get_prompt("stuck__greet")
        listed = {t.name for t in (await client.list_tools()).tools}
        await client.call_tool("stuck__release", {})
    assert _failed(hung)
    assert (refusal(over) or {}).get("code") == "limit_exceeded"
    assert not frozen.is_error
    assert read.value.data["warded/failure"]["error"] is True
    assert got.value.data["warded/failure"]["error"] is True
    assert "stuck__hang" in listed  # a re-listing that timed out leaves the tools as they were

    records = audit_records(tmp_path / "audit.db")
    hang = [r for r in records if r.get("tool") == "stuck__hang"]
    assert [(r["kind"], r.get("decision") or r.get("outcome")) for r in hang] == [
        ("decision", "allow"),
        ("outcome", "error"),
        ("decision", "deny"),
    ]
    assert hang[0]["detail"]["reservations"]
    assert "timed out" in hang[1]["detail"]["message"]
    assert "released" not in hang[1]["detail"]
    for action in ("stuck--resource", "stuck--prompt--greet"):
        outcome = [r for r in records if r.get("tool") == action and r["kind"] == "outcome"]
        assert [r["outcome"] for r in outcome] == ["error"]


@pytest.mark.requirement("G1")
async def test_a_hung_upstream_holds_none_of_the_other_upstreams_requests(tmp_path: Path) -> None:
    everything = {"command": node_bin("mcp-server-everything"), "resources": True, "prompts": True}
    config = _config(tmp_path, timeout=10 * WAIT, ev=everything)  # never reached in this test
    hung: dict[str, Any] = {}

    async def hold(key: str, request: Any) -> None:
        try:
            hung[key] = await request
        except MCPError as exc:
            hung[key] = exc

    async with stdio_gateway(config, mode="legacy") as client, anyio.create_task_group() as tasks:
        with anyio.fail_after(WAIT):
            tasks.start_soon(hold, "call", client.call_tool("stuck__hang", {"amount": 1}))
            await client.call_tool("stuck__entered", {})  # the hang call arrived upstream
            # every listing, read and get of stuck's waits now, the gateway's re-listing too
            await client.call_tool("stuck__freeze", {})
            # three list changes while stuck is listed again: one listing, not three
            arrivals = await client.call_tool("stuck__arrivals", {})
            tasks.start_soon(hold, "read", client.read_resource("stuck://note"))
            tasks.start_soon(hold, "get", client.get_prompt("stuck__greet"))

            tools = {t.name for t in (await client.list_tools()).tools}
            resources = {str(r.uri) for r in (await client.list_resources()).resources}
            templates = (await client.list_resource_templates()).resource_templates
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            echo = await client.call_tool("ev__echo", {"message": "hi"})
            doc = await client.read_resource("demo://resource/static/document/features.md")
            simple = await client.get_prompt("ev__simple-prompt")
            assert hung == {}  # all of it answered while stuck's requests still wait
            await client.call_tool("stuck__release", {})
    assert arrivals.content[0].text == "1"  # type: ignore[union-attr]
    assert {"ev__echo", "stuck__hang"} <= tools
    assert {"stuck://note", "demo://resource/static/document/features.md"} <= resources
    assert {t.uri_template for t in templates} >= {"stuck://notes/{id}"}
    assert {"ev__simple-prompt", "stuck__greet"} <= prompts
    assert not echo.is_error
    assert "Features" in doc.contents[0].text  # type: ignore[union-attr]
    assert simple.messages
    assert not hung["call"].is_error  # released: each answered in the end
    assert hung["read"].contents[0].text == "a note"
    assert hung["get"].messages
