"""What the MCP gateway adds to a `tools/call`: through the gateway vs directly, in one run.

The upstream is server-everything (npm, tests/mcp/node), its `echo` tool.
Three paths per transport, interleaved call by call (the order rotating) so
load on the machine hits them alike:

* direct: the Python SDK client → server-everything;
* gateway, SQLite: the client → `warded mcp serve` → the same server, the
  decision record committed durably (fdatasync) before every call, as
  deployed;
* gateway, memory: the same with `store = ":memory:"` (nothing durable), to
  separate the store's commit from what the gateway itself adds.

Over stdio each path has its own server-everything process; over Streamable
HTTP all three reach one server-everything HTTP server, and the client
reaches the gateway with a bearer credential. The bundle permits the call.
Run from the repository root after `(cd tests/mcp/node && npm ci)`:

    .venv/bin/python benchmarks/mcp_overhead.py [--calls 400]

Printed per transport and path: median and p99 wall time of one call, the
median added over direct, the client thread's CPU time per call
(`time.thread_time`), the gateway process's CPU time per call (all its
threads, from /proc), and for the gateway the median time the gate's
decision took (its audit records' `latency_us`: decide, and commit the
record) and the median time the upstream took (the outcome records'
`latency_us`). Last, in this process, the gateway's own `call` (the gate,
with its worker-thread hops and store commits, and the forward) against the
bare upstream call on the same connection: what the gate adds with no MCP
transport in front. The load average is printed before and after.
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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
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
WARM_UP = 20


@dataclass
class Route:
    """One way of making the call, and what it cost."""

    name: str
    client: Client
    tool: str
    gateway_pid: int | None = None
    store: Path | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    gateway_cpu: float = 0.0


def _config(folder: Path, upstream: str, store: str) -> Path:
    folder.mkdir()
    (folder / "policies").mkdir()
    (folder / "policies" / "schema.cedarschema").write_text(SCHEMA)
    (folder / "policies" / "all.cedar").write_text(POLICY)
    sha = hashlib.sha256(TOKEN.encode()).hexdigest()
    text = f"""policies = "policies"
store = "{store}"
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
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _process(
    command: list[str], ready: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
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
        if not found:
            raise RuntimeError(f"{command[0]} did not start")
        yield process, found[0]
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


def _gateway_pid(config: Path) -> int:
    """The pid of `warded mcp serve CONFIG` (over stdio the SDK client started it)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                if str(config).encode() in cmdline and b"serve" in cmdline:
                    return int(entry.name)
    raise RuntimeError("gateway process not found")


async def _measure(paths: list[Route], calls: int) -> None:
    for path in paths:
        for _ in range(WARM_UP):
            await path.client.call_tool(path.tool, {"message": "warm"})
    before = {p.name: _cpu_seconds(p.gateway_pid) for p in paths if p.gateway_pid}
    for i in range(calls):
        shift = i % len(paths)
        for path in paths[shift:] + paths[:shift]:
            cpu = time.thread_time()
            started = time.perf_counter()
            result = await path.client.call_tool(path.tool, {"message": f"hello {i}"})
            path.wall.append(time.perf_counter() - started)
            path.cpu.append(time.thread_time() - cpu)
            assert not result.is_error, result
    for path in paths:
        if path.gateway_pid:
            path.gateway_cpu = _cpu_seconds(path.gateway_pid) - before[path.name]


def _gate_times(store: Path | None) -> tuple[float, float] | None:
    """Median decision and upstream (outcome) latency in ms from a gateway's audit log."""
    if store is None or not store.exists():
        return None
    from warded import SQLiteStore

    opened = SQLiteStore(store)
    try:
        bodies = [r.body for r in opened.records()][-400:]
    finally:
        opened.close()
    decide = [b["latency_us"] for b in bodies if b["kind"] == "decision" and "latency_us" in b]
    run = [b["latency_us"] for b in bodies if b["kind"] == "outcome" and "latency_us" in b]
    if not decide or not run:
        return None
    return statistics.median(decide) / 1e3, statistics.median(run) / 1e3


def _rows(transport: str, paths: list[Route], calls: int) -> None:
    def p99(xs: list[float]) -> float:
        return sorted(xs)[max(0, int(len(xs) * 0.99) - 1)]

    direct = statistics.median(paths[0].wall)
    for path in paths:
        median = statistics.median(path.wall)
        added = "" if path is paths[0] else f"{(median - direct) * 1e3:+.2f}"
        gateway_cpu = f"{path.gateway_cpu / calls * 1e3:.2f}" if path.gateway_pid else ""
        times = _gate_times(path.store)
        decide, run = (f"{times[0]:.2f}", f"{times[1]:.2f}") if times else ("", "")
        print(
            f"| {transport} | {path.name} | {median * 1e3:.2f} | {p99(path.wall) * 1e3:.2f} "
            f"| {added} | {statistics.median(path.cpu) * 1e3:.2f} | {gateway_cpu} "
            f"| {decide} | {run} |"
        )


async def _stdio(folder: Path, calls: int) -> None:
    upstream = f'command = "{EVERYTHING}"'
    durable = _config(folder / "sqlite", upstream, "audit.db")
    volatile = _config(folder / "memory", upstream, ":memory:")
    async with contextlib.AsyncExitStack() as stack:
        direct = await stack.enter_async_context(
            Client(StdioServerParameters(command=str(EVERYTHING)), mode="legacy")
        )
        paths = [Route("direct", direct, "echo")]
        for name, config in (("gateway, SQLite", durable), ("gateway, memory", volatile)):
            command, *args = _gateway(config)
            client = await stack.enter_async_context(
                Client(StdioServerParameters(command=command, args=args), mode="legacy")
            )
            store = config.parent / "audit.db" if config is durable else None
            paths.append(Route(name, client, "ev__echo", _gateway_pid(config), store))
        await _measure(paths, calls)
    _rows("stdio", paths, calls)


async def _http(folder: Path, calls: int) -> None:
    port = _free_port()
    env = {**os.environ, "PORT": str(port)}
    with contextlib.ExitStack() as processes:
        processes.enter_context(
            _process([str(EVERYTHING), "streamableHttp"], r"listening on port", env)
        )
        upstream = f"http://127.0.0.1:{port}/mcp"
        durable = _config(folder / "sqlite", f'url = "{upstream}"', "audit.db")
        volatile = _config(folder / "memory", f'url = "{upstream}"', ":memory:")
        gateways = [
            processes.enter_context(_process(_gateway(c, "--http", "--port", "0"), r"http://\S+"))
            for c in (durable, volatile)
        ]
        async with contextlib.AsyncExitStack() as stack:
            direct = await stack.enter_async_context(_http_client(upstream, None))
            paths = [Route("direct", direct, "echo")]
            for name, (process, url), config in zip(
                ("gateway, SQLite", "gateway, memory"), gateways, (durable, volatile), strict=True
            ):
                client = await stack.enter_async_context(_http_client(url, TOKEN))
                store = config.parent / "audit.db" if config is durable else None
                paths.append(Route(name, client, "ev__echo", process.pid, store))
            await _measure(paths, calls)
    _rows("Streamable HTTP", paths, calls)


async def _in_process(folder: Path, calls: int) -> None:
    """The gateway's own `call` (the gate and its thread hops, no MCP transport in front)
    against its upstream connection's call, in this process, interleaved."""
    from warded.mcp.config import load
    from warded.mcp.gateway import open_gateway

    upstream = f'command = "{EVERYTHING}"'
    for name, store in (("gateway.call, SQLite", "audit.db"), ("gateway.call, memory", ":memory:")):
        config = load(_config(folder / name.split()[-1], upstream, store))
        gateway = open_gateway(config)
        principal = config.principal("bench")
        async with gateway.running():
            connection = gateway._upstreams["ev"]
            direct: list[float] = []
            gated: list[float] = []
            for i in range(WARM_UP + calls):
                for out, call in (
                    (direct, connection.call("echo", {"message": f"hello {i}"})),
                    (gated, gateway.call(principal, "ev__echo", {"message": "x"}, f"c{i}")),
                )[:: 1 if i % 2 else -1]:
                    started = time.perf_counter()
                    result = await call
                    if i >= WARM_UP:
                        out.append(time.perf_counter() - started)
                    assert not result.is_error, result
        if store != ":memory:":
            gateway.gate.store.close()
        d, g = statistics.median(direct), statistics.median(gated)
        print(
            f"| in process | upstream call / {name} | {d * 1e3:.2f} / {g * 1e3:.2f} "
            f"| | {(g - d) * 1e3:+.2f} | | | | |"
        )


def _fdatasync(folder: Path, times: int = 50) -> tuple[float, float]:
    """Median and p99 ms of one page written and fdatasync'ed (what a durable commit waits for)."""
    spent = []
    with open(folder / "probe", "wb") as f:
        for _ in range(times):
            f.write(b"x" * 4096)
            f.flush()
            started = time.perf_counter()
            os.fdatasync(f.fileno())
            spent.append(time.perf_counter() - started)
    spent.sort()
    return statistics.median(spent) * 1e3, spent[int(len(spent) * 0.99) - 1] * 1e3


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per path and transport")
    calls = parser.parse_args().calls
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{calls} calls per path, interleaved; times in ms")
    print()
    print(
        "| transport | path | median | p99 | added (median) | client CPU/call "
        "| gateway CPU/call | gate decision | upstream |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with (
        tempfile.TemporaryDirectory() as a,
        tempfile.TemporaryDirectory() as b,
        tempfile.TemporaryDirectory() as c,
    ):
        await _stdio(Path(a), calls)
        await _http(Path(b), calls)
        await _in_process(Path(c), calls)
        print()
        median, p99 = _fdatasync(Path(c))
        print(f"fdatasync of one page here: median {median:.2f} ms, p99 {p99:.2f} ms")
    print()
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    asyncio.run(main())
