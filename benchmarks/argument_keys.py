"""Scanning argument keys: the decision path with keys scanned, against values only.

One run, interleaved passes, thread CPU time beside the wall clock. The gate is
the one `obligations.py` measures as "obligations + scanners" (banking bundle,
the secrets scanner on the arguments feeding `context.scan.secrets`, the
injection scanner on every result, a no-op tool, an in-memory store). The
"values only" series run the same gate with the walk, masking and lookup of
`warded.scanners.base` as they are at git revision REF (default `main`), which
scan string values only; "keys too" runs this checkout's, which also scans
every key but the tool's declared parameter names (and every key of a
result: 50 transactions of 5 fields each are a result of 250 keys). Then the scan of the same
arguments alone, as the gate does it (`authorize.scan_arguments`: declared
names skipped) and as `scan_value` does it with no names declared (every key
read: the cost of free keys).

    .venv/bin/python benchmarks/argument_keys.py [--ref main] [--iterations N] [--passes P]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import warded.authorize as authorize
import warded.outcome as outcome
import warded.scanners.base as base
from obligations import AGENT, KNOWN, gate, variant
from scanners import reference_module
from timing import Timed
from warded import Session
from warded.scanners import SecretsScanner

ROWS = [
    {
        "id": i,
        "date": f"2026-01-{i % 28 + 1:02d}",
        "recipient": KNOWN,
        "amount": 10.5 + i,
        "subject": f"invoice {i}",
    }
    for i in range(50)
]


def patch(module: ModuleType) -> None:
    """The decision and output paths use `module`'s walk, masking and lookup."""
    if module is base:
        authorize.scan_value = base.scan_value
    else:  # a walk without `declared`: it reads no key anyway
        authorize.scan_value = lambda scanners, value, declared=(): module.scan_value(
            scanners, value
        )
    authorize.found_text = module.found_text
    authorize.mask_findings = module.redact
    outcome.scan_value = module.scan_value
    outcome.mask_findings = module.redact


@dataclass
class Series(Timed):
    case: str
    label: str
    module: ModuleType

    def run(self, calls: int) -> None:
        patch(self.module)
        super().run(calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default="main", help="git revision of the values-only walk")
    parser.add_argument("--iterations", type=int, default=3000, help="calls per series")
    parser.add_argument("--passes", type=int, default=20, help="interleaved passes")
    opts = parser.parse_args(argv)
    before = reference_module(opts.ref, "base")
    small = {"recipient": KNOWN, "amount": 0.01, "subject": "invoice 117, thank you"}
    large = {"recipient": KNOWN, "amount": 1200, "subject": "laptop for the new hire"}
    scanners = [SecretsScanner()]
    series: list[Series] = []
    for label, module in (("values only", before), ("keys too", base)):
        g = gate(variant(True, True), True)
        g.register(
            "get_transactions",
            {"type": "object", "properties": {"limit": {"type": "integer"}}},
            lambda limit: ROWS[:limit],
        )
        s = Session(f"bench-{label}")
        cases: dict[str, Any] = {
            "read (no arguments)": lambda g=g, s=s: g.call(AGENT, "get_balance", {}, s),
            "small payment (3 arguments)": lambda g=g, s=s: g.call(AGENT, "send_money", small, s),
            "large payment (approval)": lambda g=g, s=s: g.call(AGENT, "send_money", large, s),
            "50 transactions (result keys)": lambda g=g, s=s: g.call(
                AGENT, "get_transactions", {"limit": 50}, s
            ),
            "scan arguments (3 declared)": lambda t=g._tools["send_money"]: (
                authorize.scan_arguments(scanners, t, small)
            ),
            "scan_value (3 free keys)": lambda m=module: m.scan_value(scanners, small),
        }
        series += [Series(fn, name, label, module) for name, fn in cases.items()]
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for s in series:  # warm up: caches, and the compiled slices
        s.run(200)
        s.samples.clear()
        s.cpu_ns = 0
    per_pass = max(1, opts.iterations // opts.passes)
    for _ in range(opts.passes):
        for s in series:
            s.run(per_pass)
    patch(base)
    first = {s.case: s for s in series if s.label == "values only"}
    print(f"{'case':<32} {'variant':<12} median µs  CPU µs (mean)  vs values only (median)  (CPU)")
    for s in series:
        b = first[s.case]
        print(
            f"{s.case:<32} {s.label:<12} {s.median_us:9.1f}  {s.cpu_us:13.1f}  "
            f"{s.median_us / b.median_us:22.2f}x  {s.cpu_us / b.cpu_us:5.2f}x"
        )
    print(f"{opts.passes} interleaved passes of {per_pass} calls per series, ref {opts.ref}")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
