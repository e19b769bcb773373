"""The official MCP conformance suite: server-everything directly, then behind the gateway.

Every server scenario that server-everything passes on its own must pass
through the gateway (permit-all bundle, schema from `warded mcp schema`),
except those listed in NOT_THROUGH_THE_GATEWAY with the reason (docs/mcp.md
repeats them).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_helpers import NODE, WAIT, http_gateway, node_bin, write_config, write_schema

NOT_THROUGH_THE_GATEWAY: dict[str, str] = {
    # none: resources, prompts and resource subscriptions are forwarded (the
    # config names them) and go through the gate
}
SUMMARY = re.compile(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed", re.M)


def _conformance(url: str, out: Path) -> dict[str, bool]:
    done = subprocess.run(
        [
            "node",
            "--import",
            str(NODE / "node20.mjs"),
            node_bin("conformance"),
            "server",
            "--url",
            url,
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=10 * WAIT,
        check=False,
        cwd=NODE,
    )
    found = {name: int(failed) == 0 for name, _, failed in SUMMARY.findall(done.stdout)}
    assert found, done.stdout + done.stderr
    return found


def _everything_over_http() -> tuple[subprocess.Popen[str], str]:
    """server-everything's own Streamable HTTP server on a free port (it takes PORT only)."""
    for _ in range(5):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [node_bin("mcp-server-everything"), "streamableHttp"],
            env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PORT": str(port)},
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert process.stderr is not None
        for line in process.stderr:
            if "listening on port" in line:
                return process, f"http://localhost:{port}/mcp"
            if "already in use" in line:
                break
        process.kill()
        process.wait()
        process.stderr.close()
    raise AssertionError("server-everything did not start")


@pytest.mark.slow
def test_every_scenario_the_upstream_passes_passes_through_the_gateway(tmp_path: Path) -> None:
    process, url = _everything_over_http()
    try:
        direct = _conformance(url, tmp_path / "direct")
    finally:
        process.terminate()
        process.wait(WAIT)
        assert process.stderr is not None
        process.stderr.close()

    policies = tmp_path / "policies"
    policies.mkdir()
    config = write_config(
        tmp_path,
        policies,
        {
            "everything": {
                "command": node_bin("mcp-server-everything"),
                "resources": True,
                "prompts": True,
            }
        },
        {"conformance": {}},
        stdio=None,
        extra="",
    )
    config.write_text(config.read_text() + '\n[http]\nanonymous = "conformance"\n')
    write_schema(config, policies)
    (policies / "all.cedar").write_text("permit (principal, action, resource);\n")
    with http_gateway(config) as (gateway_url, _):
        through = _conformance(gateway_url, tmp_path / "gateway")

    expected = {name for name, ok in direct.items() if ok} - set(NOT_THROUGH_THE_GATEWAY)
    failing = sorted(name for name in expected if not through.get(name))
    assert failing == [], f"passed directly, not through the gateway: {failing}"
    assert expected, "server-everything passed no scenario directly"
