"""A candidate bundle in shadow mode, named by the gateway config's `shadow` key: it decides
every call beside the live bundle and is logged, never enforced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mcp_helpers import audit_records, refusal, shifty, stdio_gateway, write_config
from test_sessions_and_changes import POLICIES, _bundle

from warded.mcp.config import GatewayConfigError, load

pytestmark = pytest.mark.anyio

CANDIDATE = """
@id("web.read-only")
permit (principal == Agent::"desktop", action in [Action::"web__fetch", Action::"web__weather"],
        resource);
"""


def _candidate(folder: Path, live: Path) -> Path:
    candidate = folder / "candidate"
    candidate.mkdir()
    shutil.copy(live / "schema.cedarschema", candidate / "schema.cedarschema")
    (candidate / "web.cedar").write_text(CANDIDATE)
    return candidate


async def test_a_disagreement_between_live_and_shadow_lands_in_the_audit_log_and_live_decides(
    tmp_path: Path,
) -> None:
    live = _bundle(tmp_path, POLICIES)
    _candidate(tmp_path, live)
    config = write_config(tmp_path, live, {"web": shifty()}, extra='shadow = "candidate"')
    async with stdio_gateway(config) as client:
        published = await client.call_tool("web__publish", {"text": "hello"})
        weather = await client.call_tool("web__weather", {"city": "Oslo"})
    assert refusal(published) is None  # the live bundle allows it: it ran
    assert not published.is_error
    assert not weather.is_error

    decisions = [r for r in audit_records(tmp_path / "audit.db") if r["kind"] == "decision"]
    by_tool = {
        tool: {(d["mode"], d["decision"]) for d in decisions if d["tool"] == tool}
        for tool in ("web__publish", "web__weather")
    }
    assert by_tool["web__publish"] == {("enforce", "allow"), ("shadow", "deny")}
    assert by_tool["web__weather"] == {("enforce", "allow"), ("shadow", "allow")}
    publish = [d for d in decisions if d["tool"] == "web__publish"]
    assert publish[0]["call"] == publish[1]["call"]  # both decisions are of the one call
    assert publish[0]["detail"]["call_id"] == publish[1]["detail"]["call_id"]


def test_a_shadow_that_is_not_a_policy_directory_is_a_config_error_naming_the_key(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path, _bundle(tmp_path), {"web": shifty()}, extra='shadow = "nowhere"'
    )
    with pytest.raises(GatewayConfigError) as caught:
        load(config)
    assert ": shadow: " in str(caught.value)
