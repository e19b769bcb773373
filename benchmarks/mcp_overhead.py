"""What the MCP gateway adds to a `tools/call`: through the gateway vs directly, in one run.

The upstream is server-everything (npm, tests/mcp/node), its `echo` tool.
Over stdio: the Python SDK client → server-everything (stdio), against the
client → `warded mcp serve` (stdio) → server-everything (stdio). Over
Streamable HTTP: client → server-everything's own HTTP server, against
client → gateway (HTTP, a bearer credential) → the same HTTP server. The
gateway's bundle permits the call (SQLite store, the audit record written
before every call). Calls alternate between the two paths so load on the
machine hits both alike. Run from the repository root after
`(cd tests/mcp/node && npm ci)`:

    .venv/bin/python benchmarks/mcp_overhead.py [--calls 400]

It prints median and p99 latency per path, the difference, and the
gateway process's CPU time per call (from /proc), with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
EVERYTHING = ROOT / "tests" / "mcp" / "node" / "node_modules" / ".bin" / "mcp-server-everything"
TOKEN = "wmcp_benchmark-token-0123456789"
POLICY = "permit (principal, action, resource);\n"
SCHEMA = """
type Session = { id: String, labels: Set<String>, calls: Long };
type Now = { epoch: Long, hour: Long, weekday: Long };
entity Agent;
entity Tool;
action "ev__echo" appliesTo { principal: [Agent], resource: [Tool],
  context: { args: { message: String }, session: Session, now: Now } };
"""


def _config(folder: Path, upstream: str) -> Path:
    (folder / "policies").mkdir()
    (folder / "policies" / "schema.cedarschema").write_text(SCHEMA)
    (folder / "policies" / "all.cedar").write_text(POLICY)
    sha = hashlib.sha256(TOKEN.encode()).hexdigest()
    text = f"""policies = "policies"
store = "audit.db"
[upstreams.ev]
{upstream}
[principals.bench]
[[credentials]]
principal = "bench"
sha256 = "{sha}"
[stdio]
principal = "bench"
"""
    path = folder / "gateway.toml"
    path.write_text(text)
    return path


def _gateway(config: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "warded.cli", "mcp", "serve", str(config), *more]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that were waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _process(command: list[str], ready: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    found: list[str] = []
    up = threading.Event()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            match = re.search(ready, line)
            if match and not found:
                found.append(match.group(0))
                up.set()
        up.set()

    threading.Thread(target=drain, daemon=True).start()
    up.wait(120)
    try:
        yield process, found[0] if found else ""
    finally:
        process.terminate()
        process.wait(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


async def _measure(direct: Client, gated: Client, calls: int) -> tuple[list[float], list[float]]:
    times: tuple[list[float], list[float]] = ([], [])
    for client, name in ((direct, "echo"), (gated, "ev__echo")):
        for _ in range(20):  # warm up both paths
            await client.call_tool(name, {"message": "hi"})
    for i in range(calls):
        pair = [(direct, "echo", times[0]), (gated, "ev__echo", times[1])]
        for client, name, out in pair if i % 2 == 0 else reversed(pair):
            started = time.perf_counter()
            result = await client.call_tool(name, {"message": f"hello {i}"})
            out.append(time.perf_counter() - started)
            assert not result.is_error, result
    return times


def _row(transport: str, times: tuple[list[float], list[float]], cpu: float, calls: int) -> None:
    def p99(xs: list[float]) -> float:
        return sorted(xs)[int(len(xs) * 0.99) - 1]

    d, g = times
    print(
        f"| {transport} | {statistics.median(d) * 1e3:.2f} | {p99(d) * 1e3:.2f} "
        f"| {statistics.median(g) * 1e3:.2f} | {p99(g) * 1e3:.2f} "
        f"| {(statistics.median(g) - statistics.median(d)) * 1e3:+.2f} "
        f"| {cpu / calls * 1e3:.2f} |"
    )


async def _stdio(folder: Path, calls: int) -> None:
    config = _config(folder, f'command = "{EVERYTHING}"')
    command, *args = _gateway(config)
    async with (
        Client(StdioServerParameters(command=str(EVERYTHING)), mode="legacy") as direct,
        Client(StdioServerParameters(command=command, args=args), mode="legacy") as gated,
    ):
        pid = _gateway_pid(config)
        before = _cpu_seconds(pid)
        times = await _measure(direct, gated, calls)
        _row("stdio", times, _cpu_seconds(pid) - before, calls * 1 + 20)


def _gateway_pid(config: Path) -> int:
    """The pid of the `warded mcp serve CONFIG` process (stdio: started by the SDK client)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                if str(config).encode() in cmdline and b"serve" in cmdline:
                    return int(entry.name)
    raise RuntimeError("gateway process not found")


async def _http(folder: Path, calls: int) -> None:
    port = _free_port()
    env = {**os.environ, "PORT": str(port)}
    with _process([str(EVERYTHING), "streamableHttp"], r"listening on port", env):
        upstream = f"http://127.0.0.1:{port}/mcp"
        config = _config(folder, f'url = "{upstream}"')
        with _process(_gateway(config, "--http", "--port", "0"), r"http://\S+") as (gw, url):
            async with _http_client(upstream, None) as direct, _http_client(url, TOKEN) as gated:
                before = _cpu_seconds(gw.pid)
                times = await _measure(direct, gated, calls)
                _row("Streamable HTTP", times, _cpu_seconds(gw.pid) - before, calls + 20)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per path and transport")
    calls = parser.parse_args().calls
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{calls} calls per path, alternating; times in ms; CPU = gateway process per call")
    print()
    print(
        "| transport | direct median | direct p99 | gateway median | gateway p99 "
        "| added (median) | gateway CPU/call |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        await _stdio(Path(a), calls)
        await _http(Path(b), calls)
    print()
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    asyncio.run(main())
