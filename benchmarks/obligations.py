"""The decision path with obligations and scanners, against the same path without.

One run, on the banking example bundle, the same calls for every variant,
measured in interleaved passes (every series in every pass, so load that comes
and goes hits them alike), with this thread's CPU time beside the wall clock:

    .venv/bin/python benchmarks/obligations.py [--iterations N] [--passes P]

Variants (all `gate.call` with a no-op tool on an in-memory store, so what is
measured is the gate's work, not the disk):

* bare: the banking bundle with its obligation annotations and its
  `context.scan` declaration stripped (and the guard that reads it): only
  Cedar decides
* obligations: the bundle as shipped, minus scanning: a small payment
  reserves against `@budget` in the decision's transaction; a large one looks
  up (or creates) its pending approval and is refused `approval_required`
* obligations + scanners: as shipped: the secrets scanner on the arguments
  feeds `context.scan.secrets`, the injection scanner reads every result
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from timing import Timed
from warded import (
    BundleFiles,
    DirectorySource,
    Gate,
    ManualClock,
    MemoryStore,
    PolicyBundle,
    Principal,
    Session,
)
from warded.scanners import InjectionScanner, SecretsScanner

ROOT = Path(__file__).resolve().parent.parent
BANKING = ROOT / "examples" / "banking" / "policies"
KNOWN = "GB33BUKB20201555555555"
AGENT = Principal.agent("billing-bot")


def variant(obligations: bool, scan: bool) -> PolicyBundle:
    """The banking bundle with obligations and/or the scan declaration stripped."""
    files = DirectorySource(BANKING).read()
    policies = []
    for name, text in files.policies:
        if not obligations:
            text = re.sub(r'@(budget|approval|rate)\("[^"]*"\)\n', "", text)
        if not scan:
            text = re.sub(r'@id\("guard.no-secrets-in-arguments"\).*?;\n', "", text, flags=re.S)
        policies.append((name, text))
    schema_name, schema = files.schema
    if not scan:
        schema = schema.replace(", scan: Scan", "").replace("    scan: Scan,\n", "")
    return PolicyBundle.load(BundleFiles(tuple(policies), (schema_name, schema), files.entities))


def gate(bundle: PolicyBundle, scanners: bool) -> Gate:
    g = Gate(
        bundle,
        store=MemoryStore(),
        clock=ManualClock(),
        scanners=[SecretsScanner()] if scanners else [],
        output_scanners=[InjectionScanner()] if scanners else [],
    )
    g.register(
        "send_money",
        {
            "type": "object",
            "properties": {
                "recipient": {"type": "string"},
                "amount": {"type": "number"},
                "subject": {"type": "string"},
            },
            "required": ["recipient", "amount", "subject"],
            "additionalProperties": False,
        },
        lambda **_: "sent",
        resource=lambda a: ("Payee", a["recipient"]),
    )
    g.register("get_balance", {"type": "object"}, lambda: "100.00")
    return g


@dataclass
class Series(Timed):
    """One (case, variant): its calls, timed in interleaved passes."""

    case: str
    label: str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=3000, help="calls per series")
    parser.add_argument("--passes", type=int, default=20, help="interleaved passes")
    opts = parser.parse_args(argv)
    small = {"recipient": KNOWN, "amount": 0.01, "subject": "invoice 117, thank you"}
    large = {"recipient": KNOWN, "amount": 1200, "subject": "laptop for the new hire"}
    series: list[Series] = []
    for label, obligations, scan in (
        ("bare", False, False),
        ("obligations", True, False),
        ("obligations + scanners", True, True),
    ):
        g = gate(variant(obligations, scan), scan)
        session = Session("bench")
        # the budget is 300.00 a day: a one-cent payment fits n times over
        cases = {
            "read": lambda g=g, s=session: g.call(AGENT, "get_balance", {}, s),
            "small payment": lambda g=g, s=session: g.call(AGENT, "send_money", small, s),
            "large payment": lambda g=g, s=session: g.call(AGENT, "send_money", large, s),
        }
        series += [Series(fn, name, label) for name, fn in cases.items()]
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for s in series:  # warm up: caches, and the compiled slices (compiled after a few calls)
        for _ in range(200):
            s.fn()
    per_pass = max(1, opts.iterations // opts.passes)
    for _ in range(opts.passes):  # interleaved: every series in every pass
        for s in series:
            s.run(per_pass)
    bare = {s.case: s for s in series if s.label == "bare"}
    print(
        f"{'call (gate.call, memory store)':<30} {'variant':<24} median µs  CPU µs (mean)  "
        "vs bare (median)  vs bare (CPU)"
    )
    for s in series:
        b = bare[s.case]
        print(
            f"{s.case:<30} {s.label:<24} {s.median_us:9.1f}  {s.cpu_us:13.1f}  "
            f"{s.median_us / b.median_us:15.2f}x  {s.cpu_us / b.cpu_us:12.2f}x"
        )
    print(f"{opts.passes} interleaved passes of {per_pass} calls per series")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
