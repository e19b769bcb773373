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
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


class Connection:
    """One keep-alive HTTP/1.1 connection with pre-encoded requests (a lean client: the
    load generator must not need more CPU than the server it measures)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def request(self, path: str, body: dict[str, Any]) -> bytes:
        data = json.dumps(body).encode()
        start = f"POST {path} HTTP/1.1\r\n".encode()
        return start + self.head + f"Content-Length: {len(data)}\r\n\r\n".encode() + data

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


Check = Callable[[dict[str, Any], dict[str, Any]], bool]


async def load(
    url: str,
    token: str,
    path: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    seconds: float,
    wrong: Check | None = None,
) -> tuple[list[float], int, int, float]:
    """Send `bodies` (in order, shared by `concurrency` connections) until done or time is up.

    Returns the latencies, the HTTP errors, the answers `wrong` rejects, and the wall time."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = mistaken = 0
    queue = iter(bodies)
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors, mistaken
        connection = Connection(host, int(port), token)
        try:
            for body in queue:
                if time.perf_counter() > stop_at:
                    return
                request = connection.request(path, body)
                started = time.perf_counter()
                status, answer = await connection.send(request)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
                elif wrong is not None and wrong(body, json.loads(answer)):
                    mistaken += 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, mistaken, time.perf_counter() - started


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


def fresh_postgres(base: str) -> str:
    """A new, migrated schema on the PostgreSQL server `base` names, with the banking
    bundle live in it (`warded policy push`), for one run."""
    import psycopg

    from warded.policy.source import DirectorySource
    from warded.stores.live import push
    from warded.stores.postgres import PostgresStore, migrate

    name = f"bench_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}".encode())
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"
    migrate(url)
    store = PostgresStore(url)
    push(store, DirectorySource(BANKING / "policies").read(), by="benchmark")
    store.close()
    return url


def breakdown(directory: Path, config: Path, token: str, rounds: int = 5, n: int = 400) -> dict:
    """CPU µs per decide in this process: the gate alone, and the whole ASGI app without HTTP
    (interleaved rounds; the median round of each)."""
    from warded.model import Principal, Session
    from warded.server import create_app, load_config

    sys.path.insert(0, str(directory))
    app = create_app(load_config(config))
    gate = app.state.service.gate
    agent = Principal.parse('Agent::"billing-bot"')
    args = {"recipient": KNOWN, "amount": 5, "subject": "bench"}
    body = json.dumps({"tool": "send_money", "args": args, "session": "s1"}).encode()
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {token}".encode()),
    ]

    async def asgi(count: int) -> None:
        for _ in range(count):
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/v1/decide",
                "raw_path": b"/v1/decide",
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
                "state": {},
            }

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                pass

            await app(scope, receive, send)

    def gate_only(count: int) -> None:
        for i in range(count):
            gate.decide(agent, "send_money", args, Session(f"s{i % 64}"))

    results: dict[str, list[float]] = {"gate": [], "app": []}
    loop = asyncio.new_event_loop()
    loop.run_until_complete(asgi(50))
    for _ in range(rounds):
        t = time.thread_time()
        gate_only(n)
        results["gate"].append((time.thread_time() - t) / n * 1e6)
        t = time.thread_time()
        loop.run_until_complete(asgi(n))
        results["app"].append((time.thread_time() - t) / n * 1e6)
    loop.close()
    gate.store.close()
    return {k: statistics.median(v) for k, v in results.items()}


def wrong_decision(body: dict[str, Any], answer: dict[str, Any]) -> bool:
    """A refused-by-policy request that was allowed, or a permitted one refused."""
    return bool(answer.get("allowed")) != (body["args"]["amount"] > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--requests", type=int, default=40_000, help="decide requests per run")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    options = parser.parse_args()
    if options.quick:
        options.requests, options.seconds = 2_000, 10.0
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    os.environ.setdefault("WARDED_KEY", secrets.token_hex(32))  # one key for the run's nodes
    print(f"load average at start: {os.getloadavg()}; cpus: {os.cpu_count()}")
    rows = []
    split: dict[str, float] = {}
    for workers in options.workers:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            store = fresh_postgres(options.store) if options.store else None
            config, token = setup(directory, store)
            store = store or f"sqlite:///{directory / 'bench.db'}"
            if not split:
                split = breakdown(directory, config, token)
            counter = directory / "executions"
            server = Server(config, workers, counter)
            try:
                server.wait_ready()
                small = {"recipient": KNOWN, "amount": 5, "subject": "bench"}
                warm = [{"tool": "send_money", "args": small, "session": "warm"}] * 1000
                asyncio.run(load(server.url, token, "/v1/decide", warm, 8, 30))
                bodies = [
                    {
                        "tool": "send_money",
                        "args": {**small, "amount": -5 if i % 10 == 9 else 5},
                        "session": f"s{i % 64}",
                    }
                    for i in range(options.requests)
                ]
                cpu0, own0 = server.cpu_seconds(), time.process_time()
                latencies, errors, mistaken, wall = asyncio.run(
                    load(
                        server.url,
                        token,
                        "/v1/decide",
                        bodies,
                        options.concurrency,
                        options.seconds,
                        wrong_decision,
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
                _, call_errors, _, call_wall = asyncio.run(
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
                "wrong": mistaken,
                "rps": len(latencies) / wall,
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000,
                "server_us": cpu / len(latencies) * 1e6,
                "client_us": own / len(latencies) * 1e6,
                "wall_s": wall,
                "call_rps": len(calls) / call_wall,
                "executions": executions,
                "unaudited": unaudited,
                "allow_on_error": allow_on_error + mistaken,
            }
        )
    store_name = "PostgreSQL" if options.store else "SQLite"
    print(
        f"\nstore: {store_name}; {options.concurrency} connections; load average now "
        f"{tuple(round(x, 1) for x in os.getloadavg())}"
    )
    print(
        f"in-process CPU per decide: gate {split['gate']:.0f} µs, "
        f"whole app without HTTP {split['app']:.0f} µs"
    )
    print(
        "| workers | decides | decide req/s | p50 ms | p99 ms | server CPU µs/decide "
        "| client CPU µs/decide | calls req/s | executions | unaudited | allow-on-error "
        "| HTTP errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['decides']:,} | {r['rps']:,.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['server_us']:.0f} | {r['client_us']:.0f} "
            f"| {r['call_rps']:,.0f} | {r['executions']} | {r['unaudited']} "
            f"| {r['allow_on_error']} | {r['errors']} |"
        )
    if any(r["unaudited"] or r["allow_on_error"] or r["errors"] for r in rows):
        sys.exit("FAILED: an unaudited execution, an allow on error, or an HTTP error")


if __name__ == "__main__":
    main()
