"""A call under `@approval` through the gateway: `approval_required` with its id, a person
approves it with the CLI, and the agent's identical retry runs exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_helpers import WAIT, audit_records, refusal, shifty, stdio_gateway, write_config
from test_sessions_and_changes import SCHEMA

pytestmark = pytest.mark.anyio

POLICIES = """
@id("web.fetch")
permit (principal == Agent::"desktop", action == Action::"web__fetch", resource);

@id("web.publish-approved")
@approval("editors")
permit (principal == Agent::"desktop", action == Action::"web__publish", resource);
"""
ENTITIES = [
    {"uid": {"type": "Agent", "id": "desktop"}, "attrs": {}, "parents": []},
    {"uid": {"type": "ApproverGroup", "id": "editors"}, "attrs": {}, "parents": []},
    {
        "uid": {"type": "Approver", "id": "alice"},
        "attrs": {},
        "parents": [{"type": "ApproverGroup", "id": "editors"}],
    },
]


def _approve(db: Path, approval: str, policies: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "warded.cli",
            "approvals",
            "approve",
            str(db),
            approval,
            "--as",
            "alice",
            "--policies",
            str(policies),
        ],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )


@pytest.mark.requirement("G8")
async def test_an_approved_call_runs_once_when_the_agent_retries_it(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    schema = SCHEMA + "entity ApproverGroup;\nentity Approver in [ApproverGroup];\n"
    (policies / "schema.cedarschema").write_text(schema)
    (policies / "web.cedar").write_text(POLICIES)
    (policies / "entities.json").write_text(json.dumps(ENTITIES))
    config = write_config(tmp_path, policies, {"web": shifty()})
    post = {"text": "our launch"}

    async with stdio_gateway(config) as client:
        assert "web__publish" in {t.name for t in (await client.list_tools()).tools}
        held = await client.call_tool("web__publish", post)
    asked = refusal(held)
    assert asked is not None
    assert asked["code"] == "approval_required"
    assert held.is_error
    assert asked["approval_id"] in "".join(c.text for c in held.content)  # type: ignore[union-attr]

    _approve(tmp_path / "audit.db", asked["approval_id"], policies)

    async with stdio_gateway(config) as client:  # a new connection: the session is the agent's
        other = await client.call_tool("web__publish", {"text": "something else"})
        retried = await client.call_tool("web__publish", post)
        again = await client.call_tool("web__publish", post)
    assert refusal(other)["code"] == "approval_required"  # type: ignore[index]
    assert refusal(retried) is None
    assert not retried.is_error
    assert retried.content[0].text == "published"  # type: ignore[union-attr]
    assert refusal(again)["code"] == "approval_required"  # type: ignore[index]  # used up
    ran = [
        r
        for r in audit_records(tmp_path / "audit.db")
        if r["kind"] == "outcome" and r["tool"] == "web__publish"
    ]
    assert [r["outcome"] for r in ran] == ["ok"]
