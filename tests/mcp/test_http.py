"""The gateway over Streamable HTTP: per-agent bearer credentials, before mcp-server-time.

The schema of the bundle is what `warded mcp schema` generates from the
upstream's own listing.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp_helpers import WAIT, bearer_client, http_gateway, refusal, write_config, write_schema

pytestmark = pytest.mark.anyio

ALICE, BOB, OLD = (
    "wmcp_alice-token-0123456789",
    "wmcp_bob-token-0123456789",
    "wmcp_old-token-012345",
)
POLICIES = """
permit (principal == Agent::"alice", action in Action::"time", resource);
permit (principal == Agent::"bob", action == Action::"time__get_current_time", resource);
"""


def _sha(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One gateway for this module's tests (it is slow to start on a loaded machine)."""
    tmp_path = tmp_path_factory.mktemp("http")
    policies = tmp_path / "policies"
    policies.mkdir()
    time_server = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    assert time_server is not None, "mcp-server-time comes with the mcp extra"
    path = write_config(
        tmp_path,
        policies,
        {"time": {"command": time_server, "args": ["--local-timezone", "UTC"]}},
        {"alice": {}, "bob": {}},
        stdio=None,
        credentials=[
            {"principal": "alice", "sha256": _sha(ALICE)},
            {"principal": "bob", "sha256": _sha(BOB)},
            {"principal": "alice", "sha256": _sha(OLD), "expires": "2020-01-01T00:00:00Z"},
        ],
    )
    write_schema(path, policies)
    (policies / "time.cedar").write_text(POLICIES)
    with http_gateway(path) as (url, _):
        yield url


@pytest.mark.requirement("G15")
async def test_two_agents_with_different_credentials_see_and_may_call_different_tools(
    gateway: str,
) -> None:
    url = gateway
    for mode in ("legacy", "auto"):
        async with (
            bearer_client(url, ALICE, mode=mode) as alice,
            bearer_client(url, BOB, mode=mode) as bob,
        ):
            seen_by_alice = {t.name for t in (await alice.list_tools()).tools}
            seen_by_bob = {t.name for t in (await bob.list_tools()).tools}
            converted = await alice.call_tool(
                "time__convert_time",
                {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"},
            )
            refused = await bob.call_tool(
                "time__convert_time",
                {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"},
            )
        assert seen_by_alice == {"time__get_current_time", "time__convert_time"}
        assert seen_by_bob == {"time__get_current_time"}
        assert not converted.is_error
        assert "Europe/Paris" in str(converted.structured_content)
        assert refusal(refused)["code"] == "unknown_tool"  # type: ignore[index]


@pytest.mark.requirement("G15")
async def test_missing_wrong_or_expired_credentials_get_401_with_the_resource_metadata(
    gateway: str,
) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    url = gateway
    async with httpx2.AsyncClient(timeout=WAIT) as http:
        answers = [
            await http.post(url, json=body, headers=headers),
            await http.post(url, json=body, headers={**headers, "Authorization": "Bearer nope"}),
            await http.post(url, json=body, headers={**headers, "Authorization": f"Bearer {OLD}"}),
            await http.post(url, json=body, headers={**headers, "Authorization": ALICE}),
        ]
        challenge = answers[0].headers["www-authenticate"]
        metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
        metadata = (await http.get(metadata_url)).json()
    assert [a.status_code for a in answers] == [401, 401, 401, 401]
    assert all("invalid_token" in a.headers["www-authenticate"] for a in answers)
    assert metadata["resource"].rstrip("/") == url.rstrip("/")
    assert metadata["authorization_servers"]


@pytest.mark.requirement("G15")
async def test_an_http_session_cannot_be_resumed_with_another_credential(gateway: str) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    url = gateway
    async with httpx2.AsyncClient(timeout=WAIT) as http:
        opened = await http.post(
            url, json=init, headers={**accept, "Authorization": f"Bearer {ALICE}"}
        )
        session = opened.headers["mcp-session-id"]
        resumed = {**accept, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        by_bob = await http.post(
            url, json=listing, headers={**resumed, "Authorization": f"Bearer {BOB}"}
        )
        by_alice = await http.post(
            url, json=listing, headers={**resumed, "Authorization": f"Bearer {ALICE}"}
        )
    assert opened.status_code == 200
    assert by_bob.status_code == 404
    assert by_alice.status_code == 200


async def test_an_http_upstream_is_reached_over_streamable_http_and_its_results_forwarded(
    tmp_path: Path,
) -> None:
    from mcp_helpers import stdio_gateway
    from test_conformance import _everything_over_http

    process, upstream = _everything_over_http()
    try:
        policies = tmp_path / "policies"
        policies.mkdir()
        config = write_config(tmp_path, policies, {"ev": {"url": upstream}})
        write_schema(config, policies)
        (policies / "echo.cedar").write_text(
            'permit (principal == Agent::"desktop", action == Action::"ev__echo", resource);\n'
        )
        async with stdio_gateway(config) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            # several calls in a row: each SSE answer is read to its end and the
            # connection kept, and none of that may lose or mix up a result
            echoed = [
                await client.call_tool("ev__echo", {"message": f"hello {i}"}) for i in range(5)
            ]
    finally:
        process.terminate()
        process.wait(WAIT)
        assert process.stderr is not None
        process.stderr.close()
    assert names == {"ev__echo"}
    assert [e.content[0].text for e in echoed] == [f"Echo: hello {i}" for i in range(5)]  # type: ignore[union-attr]


async def test_behind_a_proxy_the_public_host_is_accepted_and_any_other_host_refused(
    tmp_path: Path,
) -> None:
    from mcp_helpers import shifty
    from test_sessions_and_changes import _bundle

    config = write_config(
        tmp_path,
        _bundle(tmp_path),
        {"web": shifty()},
        {"desktop": {}},
        stdio=None,
        credentials=[{"principal": "desktop", "sha256": _sha(ALICE)}],
        extra='[http]\npublic_url = "https://mcp.example.com/mcp"',
    )
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {ALICE}"}
    with http_gateway(config) as (url, _):
        async with httpx2.AsyncClient(timeout=WAIT) as http:
            answers = {
                host: (await http.post(url, json=init, headers={**headers, "Host": host}))
                for host in ("mcp.example.com", "evil.example", url.split("/")[2])
            }
            proxied_origin = await http.post(
                url,
                json=init,
                headers={
                    **headers,
                    "Host": "mcp.example.com",
                    "Origin": "https://evil.example",
                },
            )
    assert answers["mcp.example.com"].status_code == 200
    assert answers["evil.example"].status_code == 421  # DNS rebinding: refused
    assert answers[url.split("/")[2]].status_code == 200  # the loopback address itself
    assert proxied_origin.status_code == 403
