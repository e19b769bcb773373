"""What routing a `resources/read` costs with two upstreams serving resources, before and after
the routing map, interleaved in one run.

Upstreams: server-everything (npm, tests/mcp/node) and tests/mcp/servers/hostile.py, both
with `resources = true`, behind an in-process `Gateway` (SQLite store in a temporary
folder). Two variants per round, the order alternating:

* before: what every read did until now — list every serving upstream's resources and
  templates (all pages) to find the one owner — then the read through the gate;
* after: the read through the gate, routed by the map kept from the upstreams' listings.

Printed: median and p90 wall time per read, the median CPU time of the event loop's thread
(`time.thread_time`: the listings and the routing run there; the gate's decision threads
are not counted), the ratios, and the load average before and after. Run from the
repository root after `(cd tests/mcp/node && npm ci)`:

    .venv/bin/python benchmarks/mcp_routing.py [--reads 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from warded.mcp import load
from warded.mcp.gateway import open_gateway
from warded.mcp.schema import cedar_schema
from warded.mcp.upstream import list_all

ROOT = Path(__file__).resolve().parent.parent
EVERYTHING = ROOT / "tests" / "mcp" / "node" / "node_modules" / ".bin" / "mcp-server-everything"
HOSTILE = ROOT / "tests" / "mcp" / "servers" / "hostile.py"
URI = "demo://resource/static/document/features.md"


def config(folder: Path) -> Path:
    (folder / "policies").mkdir()
    (folder / "policies" / "all.cedar").write_text("permit (principal, action, resource);\n")
    path = folder / "gateway.toml"
    path.write_text(
        'policies = "policies"\nstore = "audit.db"\n'
        f"[upstreams.ev]\ncommand = {str(EVERYTHING)!r}\nresources = true\n"
        f"[upstreams.h]\ncommand = {sys.executable!r}\nargs = [{str(HOSTILE)!r}]\n"
        "resources = true\n[principals.desktop]\n"
    )
    return path


async def run(reads: int) -> None:
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        conf = load(config(Path(tmp)))
        schema = cedar_schema(conf, await list_all(conf.upstreams))
        (conf.policies / "schema.cedarschema").write_text(schema)
        gateway = open_gateway(conf)
        desktop = conf.principal("desktop")
        wall: dict[str, list[float]] = {"before": [], "after": []}
        cpu: dict[str, list[float]] = {"before": [], "after": []}
        async with gateway.running():
            upstreams = list(gateway._upstreams.values())

            async def before(n: int) -> None:
                for upstream in upstreams:  # what `_route` did on every read
                    await upstream.resources()
                    await upstream.resource_templates()
                await gateway.forwarded.read(desktop, URI, f"b{n}")

            async def after(n: int) -> None:
                await gateway.forwarded.read(desktop, URI, f"a{n}")

            variants = {"before": before, "after": after}
            for n in range(reads + 20):
                order = ["before", "after"] if n % 2 else ["after", "before"]
                for name in order:
                    started, thread = time.perf_counter(), time.thread_time()
                    await variants[name](n)
                    if n >= 20:  # warm-up rounds are not counted
                        wall[name].append(time.perf_counter() - started)
                        cpu[name].append(time.thread_time() - thread)
    for name in ("before", "after"):
        w = sorted(wall[name])
        print(
            f"{name:6}  median {statistics.median(w) * 1e3:7.3f} ms"
            f"  p90 {w[int(len(w) * 0.9)] * 1e3:7.3f} ms"
            f"  thread CPU median {statistics.median(cpu[name]) * 1e3:7.3f} ms"
        )
    ratio = statistics.median(wall["before"]) / statistics.median(wall["after"])
    cpu_ratio = statistics.median(cpu["before"]) / statistics.median(cpu["after"])
    print(f"before/after: wall {ratio:.2f}x, thread CPU {cpu_ratio:.2f}x ({reads} reads each)")
    print(f"load average after: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=300)
    asyncio.run(run(parser.parse_args().reads))


if __name__ == "__main__":
    main()
