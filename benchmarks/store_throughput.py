"""Durable `gate.call` throughput on SQLite and PostgreSQL, with and without group commit.

One run, every variant interleaved round by round:

    .venv/bin/python benchmarks/store_throughput.py [--rounds 3] [--calls 400]
        [--pg-url postgresql://postgres@127.0.0.1:5432/test]

A call is the whole durable path on the banking bundle: decide, record the
decision (committed durably before the tool runs), run a no-op tool
(`get_balance`), record the outcome. Variants: SQLite and PostgreSQL, one
node with 1, 8 and 32 caller threads, and PostgreSQL with 4 node processes of
8 callers each (32 in all); each with group commit (the default) and without
(`batch=1`: every transaction commits, and is made durable, alone). The
same calls on the in-memory store (nothing durable) show the gate's own
ceiling on this machine. Each
variant makes about `--calls` calls per round; every SQLite file and
PostgreSQL schema is new, and its chain must verify at the end (exit 1 if
not).

Reported per variant: calls per second (the median over rounds), p50 and
p99 latency of one call (over every call of every round), and the CPU time
the gate's processes spent per call (every thread; the PostgreSQL server's
own CPU is not in it). The machine's load average is printed with the table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warded import Gate, MemoryStore, PolicyBundle, Principal, Session, SQLiteStore, verify
from warded.store import Store

ROOT = Path(__file__).resolve().parent.parent
BANKING = ROOT / "examples" / "banking" / "policies"
AGENT = Principal.agent("billing-bot")
KEY = "b0" * 32
BOUND = 600.0
SHARED_MEMORY = MemoryStore()  # the memory variant: one node, in the node's process


@dataclass(frozen=True)
class Variant:
    store: str  # "memory" (no durability: the gate's own ceiling), "sqlite" or "postgres"
    nodes: int
    callers: int  # per node
    group: bool

    @property
    def name(self) -> str:
        where = f"{self.nodes} nodes x {self.callers}" if self.nodes > 1 else f"{self.callers}"
        return f"{self.store:<8} {where:>11} {'group' if self.group else 'single':>7}"


VARIANTS = (
    [Variant("memory", 1, callers, True) for callers in (1, 8, 32)]
    + [
        Variant(store, 1, callers, group)
        for store in ("sqlite", "postgres")
        for callers in (1, 8, 32)
        for group in (True, False)
    ]
    + [Variant("postgres", 4, 8, group) for group in (True, False)]
)


def open_store(variant: Variant, target: str) -> Store:
    batch = 256 if variant.group else 1
    if variant.store == "memory":
        return SHARED_MEMORY
    if variant.store == "sqlite":
        return SQLiteStore(target, timeout=60, batch=batch)
    from warded.stores.postgres import PostgresStore

    return PostgresStore(target, batch=batch)


def node(variant: Variant, target: str, calls: int, barrier: Any, out: Any) -> None:
    """One gate with `variant.callers` threads making `calls` calls in all."""
    os.environ["WARDED_KEY"] = KEY
    store = open_store(variant, target)
    gate = Gate(PolicyBundle.from_directory(BANKING), store=store)

    @gate.tool
    def get_balance() -> float:
        return 100.0

    gate.call(AGENT, "get_balance", {}, Session("warm-up"))
    each = max(1, calls // (variant.callers * variant.nodes))
    latencies: list[list[float]] = [[] for _ in range(variant.callers)]
    failures: list[object] = []
    start = threading.Barrier(variant.callers + 1)

    def caller(i: int) -> None:
        session = Session(f"s-{os.getpid()}-{i}")
        start.wait()
        for _ in range(each):
            t = time.perf_counter()
            result = gate.call(AGENT, "get_balance", {}, session)
            latencies[i].append(time.perf_counter() - t)
            if result != 100.0:
                failures.append(result)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(variant.callers)]
    for t in threads:
        t.start()
    barrier.wait(BOUND)  # every node is ready: go
    cpu, wall = time.process_time(), time.perf_counter()
    start.wait()
    for t in threads:
        t.join(BOUND)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    records = list(store.records()) if variant.store == "memory" else None
    store.close()
    out.send(
        {
            "wall": wall,
            "cpu": cpu,
            "calls": each * variant.callers,
            "latencies": [x for xs in latencies for x in xs],
            "failures": [repr(f) for f in failures[:3]],
            "verified": None if records is None else verify(records).ok,
            "records": None if records is None else len(records),
        }
    )


@dataclass
class Measured:
    rates: list[float]
    latencies: list[float]
    cpu_per_call: list[float]
    verified: bool = True


def run(
    variant: Variant, calls: int, pg_url: str, ctx: Any
) -> tuple[float, float, list[float], bool]:
    """(calls/s, CPU s per call, latencies, chain verified) for one round of one variant."""
    tmp = tempfile.mkdtemp(prefix="warded-bench-", dir=ROOT)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    if variant.store == "sqlite":
        target = str(Path(tmp) / "store.db")
        SQLiteStore(target).close()
    else:
        target = pg_schema(pg_url, schema)
    try:
        barrier = ctx.Barrier(variant.nodes + 1)
        pipes = [ctx.Pipe(duplex=False) for _ in range(variant.nodes)]
        procs = [
            ctx.Process(target=node, args=(variant, target, calls, barrier, send))
            for _, send in pipes
        ]
        for p in procs:
            p.start()
        barrier.wait(BOUND)
        started = time.perf_counter()
        reports = [recv.recv() for recv, _ in pipes]
        elapsed = time.perf_counter() - started
        for p in procs:
            p.join(BOUND)
        failures = [f for r in reports for f in r["failures"]]
        if failures:
            raise SystemExit(f"{variant.name}: calls did not run: {failures}")
        total = sum(r["calls"] for r in reports)
        wall = max(r["wall"] for r in reports) if variant.nodes == 1 else elapsed
        cpu = sum(r["cpu"] for r in reports) / total
        lat = [x for r in reports for x in r["latencies"]]
        expected = 2 * (total + variant.nodes)  # decision and outcome; one warm-up per node
        if variant.store == "memory":
            ok = bool(reports[0]["verified"]) and reports[0]["records"] == expected
        else:
            os.environ["WARDED_KEY"] = KEY
            store = open_store(variant, target)
            try:
                records = list(store.records())
            finally:
                store.close()
            ok = verify(records).ok and len(records) == expected
        return total / wall, cpu, lat, ok
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if variant.store == "postgres":
            drop_schema(pg_url, schema)


def pg_schema(base: str, schema: str) -> str:
    import psycopg

    from warded.stores.postgres import migrate

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    migrate(url)
    return url


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


def fsync_ms(directory: Path, n: int = 50) -> float:
    """The median time of one small write and fdatasync on the benchmark's disk."""
    path = directory / ".fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    times = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 512)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1e3


def percentile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=400, help="calls per variant per round")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "WARDED_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--only", default="", help="run only variants whose name contains this")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("fork")
    variants = [v for v in VARIANTS if args.only in v.name]
    results = {v: Measured([], [], []) for v in variants}
    load_before = os.getloadavg()
    disk = fsync_ms(ROOT)
    for r in range(args.rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            rate, cpu, lat, ok = run(v, args.calls, args.pg_url, ctx)
            m = results[v]
            m.rates.append(rate)
            m.cpu_per_call.append(cpu)
            m.latencies += lat
            m.verified &= ok
            print(f"round {r + 1}: {v.name}  {rate:8.0f} calls/s", file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    print(f"durable gate.call, {args.rounds} rounds x ~{args.calls} calls per variant")
    print(f"one write + fdatasync on this disk: {disk:.2f} ms median (before the run)")
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f};"
        f" {os.cpu_count()} CPUs"
    )
    print()
    print("| store | callers | commit | calls/s | p50 ms | p99 ms | CPU ms/call | chain |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for v in variants:
        m = results[v]
        where = f"{v.nodes} nodes x {v.callers}" if v.nodes > 1 else str(v.callers)
        print(
            f"| {v.store} | {where} "
            f"| {'-' if v.store == 'memory' else 'group' if v.group else 'single'} "
            f"| {statistics.median(m.rates):,.0f} "
            f"| {percentile(m.latencies, 0.50) * 1e3:.2f} "
            f"| {percentile(m.latencies, 0.99) * 1e3:.2f} "
            f"| {statistics.median(m.cpu_per_call) * 1e3:.2f} "
            f"| {'verifies' if m.verified else 'BROKEN'} |"
        )
    if not all(m.verified for m in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
