"""Calls the service forwards to an MCP upstream named in the gateway's config
(`mcp: gateway.toml`): a real upstream, mcp-server-time (the mcp extra), over stdio.

The schema of the bundle is what `warded mcp schema` generates from the
upstream's own listing; the billing agent may ask for the current time and
nothing else of the upstream.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from server_helpers import Tokens, bearer, post_call
from warded import ManualClock
from warded.server import ConfigError, create_app, load_config
from warded.stores.sqlite import SQLiteStore

WAIT = 120.0
POLICY = """
@id("time.now")
permit (principal == Agent::"billing-bot", action == Action::"time__get_current_time", resource);
"""


def gateway_toml(directory: Path, time_server: str) -> Path:
    path = directory / "gateway.toml"
    path.write_text(
        'policies = "policies"\n'
        'store = ":memory:"\n'
        "[upstreams.time]\n"
        f"command = {time_server!r}\n"
        'args = ["--local-timezone", "UTC"]\n'
    )
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the policy directory, the gateway config), generated once for the module."""
    directory = tmp_path_factory.mktemp("mcp-service")
    policies = directory / "policies"
    policies.mkdir()
    time_server = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    assert time_server is not None, "mcp-server-time comes with the mcp extra"
    gateway = gateway_toml(directory, time_server)
    schema = subprocess.run(
        [sys.executable, "-m", "warded.cli", "mcp", "schema", str(gateway)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    ).stdout
    (policies / "schema.cedarschema").write_text(schema)
    (policies / "time.cedar").write_text(POLICY)
    return policies, gateway


def service_config(directory: Path, accounts: Path, policies: Path, gateway: Path) -> Path:
    shutil.copy(accounts, directory / "accounts.json")
    settings = {
        "policies": str(policies),
        "store": "warded.db",
        "accounts": "accounts.json",
        "mcp": str(gateway),
        "secret_key_file": "service.key",
    }
    path = directory / "service.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def client(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], bundle: tuple[Path, Path]
) -> Iterator[TestClient]:
    config = service_config(tmp_path, accounts_file[0], *bundle)
    with TestClient(create_app(load_config(config), clock=ManualClock())) as c:
        yield c


def call(client: TestClient, token: str, tool: str, args: dict[str, Any], call_id: str) -> Any:
    return post_call(client, token, tool, args, session="mcp-s", call_id=call_id)


def test_the_agent_lists_the_upstream_tools_its_policy_permits(
    client: TestClient, tokens: Tokens
) -> None:
    listed = client.get("/v1/tools?session=mcp-s", headers=bearer(tokens.billing)).json()
    assert [t["name"] for t in listed["tools"]] == ["time__get_current_time"]
    (tool,) = listed["tools"]
    assert tool["parameters"]["required"] == ["timezone"]  # the upstream's own input schema
    other = client.get("/v1/tools?session=mcp-s", headers=bearer(tokens.support)).json()
    assert other == {"tools": []}


def test_a_permitted_call_is_forwarded_upstream_and_audited_before_it_runs(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    answer = call(client, tokens.billing, "time__get_current_time", {"timezone": "UTC"}, "t1")
    assert answer["status"] == "ok", answer
    result = answer["result"]
    assert result.get("isError", False) is False
    (content,) = result["content"]
    assert content["type"] == "text"
    assert '"timezone": "UTC"' in content["text"]  # the upstream's own answer
    store = SQLiteStore(tmp_path / "warded.db")
    try:
        bodies = [r.body for r in store.records()]
    finally:
        store.close()
    started = [b for b in bodies if b["kind"] == "event" and b["detail"]["event"] == "mcp.start"]
    assert started[0]["detail"]["upstreams"] == ["time"]
    mine = [b for b in bodies if b.get("tool") == "time__get_current_time"]
    assert [(b["kind"], b.get("decision"), b.get("outcome")) for b in mine] == [
        ("decision", "allow", None),
        ("outcome", None, "ok"),
    ]
    assert mine[0]["seq"] < mine[1]["seq"]
    assert mine[0]["policies"] == ["time.now"]


def test_a_refused_upstream_tool_is_never_forwarded_and_looks_like_no_tool(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    args = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/London"}
    hidden = call(client, tokens.billing, "time__convert_time", args, "t2")
    missing = call(client, tokens.billing, "time__no_such_tool", {}, "t3")
    assert hidden["status"] == missing["status"] == "refused"
    assert hidden["refusal"]["code"] == missing["refusal"]["code"] == "unknown_tool"
    hidden["refusal"]["ref"] = missing["refusal"]["ref"] = ""
    assert hidden == missing
    store = SQLiteStore(tmp_path / "warded.db")
    try:
        outcomes = [r.body for r in store.records() if r.body["kind"] == "outcome"]
    finally:
        store.close()
    assert outcomes == []


def test_a_gateway_config_that_does_not_load_is_an_error_naming_it(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], bundle: tuple[Path, Path]
) -> None:
    broken = tmp_path / "gateway.toml"
    broken.write_text('policies = "policies"\n[upstreams.bad_id]\ncommand = "x"\n')
    config = service_config(tmp_path, accounts_file[0], bundle[0], broken)
    with pytest.raises(ConfigError) as caught:
        create_app(load_config(config))
    assert "mcp:" in str(caught.value)
    assert "upstreams" in str(caught.value)
