"""Load on `warded serve` from a second process on loopback: decide requests/s, p50/p99.

    .venv/bin/python benchmarks/service_load.py                       # SQLite, 1 and 2 workers
    .venv/bin/python benchmarks/service_load.py --store postgresql://…  # when that store lands
    .venv/bin/python benchmarks/service_load.py --quick

For each worker count it starts `warded serve run` on the banking example (a
subprocess on 127.0.0.1), then this process sends a bounded load (count- and
time-limited) of `POST /v1/decide` (a small payment: Cedar decision plus the
budget check in the store) with a fixed number of concurrent connections,
then a bounded mixed phase of `POST /v1/calls`. Afterwards it checks the
audit log: every execution has an allowing decision record before it (zero
unaudited executions) and no allow carries an engine error (zero
allow-on-error). CPU seconds of the server and of the load generator are
printed beside wall time, with the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BANKING = ROOT / "examples" / "banking"
KNOWN = "GB33BUKB20201555555555"
COUNTER = "WARDED_BENCH_EXECUTIONS"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(directory: Path, store: str | None) -> tuple[Path, str]:
    sys.path.insert(0, str(ROOT / "src"))
    from warded.server.accounts import AccountBook

    (directory / "bench_tools.py").write_text(
        "import os\n\n"
        "def register(gate):\n"
        "    @gate.tool(effect='irreversible', resource=lambda a: ('Payee', a['recipient']))\n"
        "    def send_money(recipient: str, amount: float, subject: str) -> dict:\n"
        f"        with open(os.environ['{COUNTER}'], 'a') as f:  # every execution, on disk\n"
        "            f.write('1\\n')\n"
        "        return {'status': 'sent'}\n"
    )
    config = {
        "policies": str(BANKING / "policies"),
        "store": store or str(directory / "bench.db"),
        "accounts": "accounts.json",
        "tools": "bench_tools:register",
        "secret_key_file": "service.key",
    }
    path = directory / "service.yaml"
    path.write_text(json.dumps(config))
    token = AccountBook(directory / "accounts.json").add(
        "billing-bot", "agent", principal='Agent::"billing-bot"'
    )
    return path, token


class Server:
    def __init__(self, config: Path, workers: int, counter: Path) -> None:
        self.port = free_port()
        env = {**os.environ, COUNTER: str(counter), "PYTHONPATH": str(config.parent)}
        command = [sys.executable, "-m", "warded.cli", "serve", "run", str(config)]
        command += ["--port", str(self.port), "--workers", str(workers), "--no-access-log"]
        self.log = open(config.parent / "server.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited; see server.log")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server not ready within 60 s")

    def cpu_seconds(self) -> float:
        """User+system CPU of the server process tree (from /proc)."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


async def load(
    url: str, token: str, path: str, bodies: list[dict[str, Any]], concurrency: int, seconds: float
) -> tuple[list[float], int, float]:
    """Send `bodies` (in order, shared by `concurrency` connections) until done or time is up."""
    latencies: list[float] = []
    errors = 0
    queue = iter(bodies)
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as c:

        async def worker() -> None:
            nonlocal errors
            for body in queue:
                if time.perf_counter() > stop_at:
                    return
                started = time.perf_counter()
                answer = await c.post(path, json=body)
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def audit_check(store: str, counter: Path) -> tuple[int, int, int]:
    """(executions, executions without an allowing decision before them, allows with errors)."""
    from warded.server.config import open_store

    db = open_store(store)
    allowed: set[str] = set()
    unaudited = allow_on_error = outcomes = 0
    for record in db.records():
        body = record.body
        if body["kind"] == "decision" and body["decision"] == "allow" and body["mode"] == "enforce":
            allowed.add(body["call"])
            allow_on_error += bool(body["reasons"])
        elif body["kind"] == "outcome" and body["tool"] == "send_money":
            outcomes += 1
            unaudited += body["call"] not in allowed
    db.close()
    executions = len(counter.read_text().split()) if counter.exists() else 0
    unaudited += max(0, executions - outcomes)
    return executions, unaudited, allow_on_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=None, help="a store URL (default: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--requests", type=int, default=20_000, help="decide requests per run")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    options = parser.parse_args()
    if options.quick:
        options.requests, options.seconds = 1_000, 10.0
    print(f"load average at start: {os.getloadavg()}; cpus: {os.cpu_count()}")
    rows = []
    for workers in options.workers:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            config, token = setup(directory, options.store)
            store = options.store or f"sqlite:///{directory / 'bench.db'}"
            counter = directory / "executions"
            server = Server(config, workers, counter)
            try:
                server.wait_ready()
                small = {"recipient": KNOWN, "amount": 5, "subject": "bench"}
                warm = [{"tool": "send_money", "args": small, "session": "warm"}] * 500
                asyncio.run(load(server.url, token, "/v1/decide", warm, 8, 30))
                bodies = [
                    {"tool": "send_money", "args": small, "session": f"s{i % 64}"}
                    for i in range(options.requests)
                ]
                cpu0, own0 = server.cpu_seconds(), time.process_time()
                latencies, errors, wall = asyncio.run(
                    load(
                        server.url,
                        token,
                        "/v1/decide",
                        bodies,
                        options.concurrency,
                        options.seconds,
                    )
                )
                cpu, own = server.cpu_seconds() - cpu0, time.process_time() - own0
                calls = [
                    {
                        "tool": "send_money",
                        "args": {**small, "amount": 1 + i % 150},
                        "session": f"c{i}",
                    }
                    for i in range(min(2_000, options.requests // 10))
                ]
                _, call_errors, call_wall = asyncio.run(
                    load(server.url, token, "/v1/calls", calls, 16, options.seconds)
                )
            finally:
                server.stop()
            executions, unaudited, allow_on_error = audit_check(store, counter)
        rows.append(
            {
                "workers": workers,
                "decides": len(latencies),
                "errors": errors + call_errors,
                "rps": len(latencies) / wall,
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000,
                "server_cpu_s": cpu,
                "client_cpu_s": own,
                "wall_s": wall,
                "calls": len(calls),
                "call_rps": len(calls) / call_wall,
                "executions": executions,
                "unaudited": unaudited,
                "allow_on_error": allow_on_error,
            }
        )
    store_name = "PostgreSQL" if options.store and "postgres" in options.store else "SQLite"
    print(f"\nstore: {store_name}; {options.concurrency} connections")
    print(f"load average now {os.getloadavg()}")
    print(
        "| workers | decide req/s | p50 ms | p99 ms | server CPU s | load-generator CPU s | wall s "
        "| calls req/s | executions | unaudited | allow-on-error | HTTP errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['server_cpu_s']:.1f} | {r['client_cpu_s']:.1f} | {r['wall_s']:.1f} "
            f"| {r['call_rps']:,.0f} | {r['executions']} | {r['unaudited']} "
            f"| {r['allow_on_error']} | {r['errors']} |"
        )
    if any(r["unaudited"] or r["allow_on_error"] for r in rows):
        sys.exit("FAILED: an execution without its decision record, or an allow on error")


if __name__ == "__main__":
    main()
