"""What argument provenance costs a call, by how much the session remembers.

One run, the same calls for every variant, measured in interleaved passes
(every series in every pass, so load that comes and goes hits them alike),
with this thread's CPU time beside the wall clock:

    .venv/bin/python benchmarks/provenance.py [--iterations N] [--passes P] [--against REF]

A payment tool (recipient, amount, subject) on an in-memory store, so what is
measured is the gate's work, not the disk. Sessions start with 0, 10 KB or
100 KB of remembered content: the user's request and tool outputs (mail-like
text with IBANs, e-mail addresses, URLs and ids, half of it labelled
untrusted). Variants, per size:

* without: the payment's action declares no provenance (the policy reads
  only `context.args`); its output is still remembered, as every output is;
* with: the action declares `provenance: { recipient, subject }` and the
  policy permits a recipient from the user (`containsAny(["user", "approved"])`);
  two string leaves are matched per call.

Rows: `decide` (`gate.decide`, the decision path alone), `call` (`gate.call`,
the whole lifecycle: decision, records, execution, outcome; the tool returns
nothing, so the session does not change and its index is built once), and
`call, noted` (the tool returns `{"status": "sent"}`, remembered as two
strings of 10 characters, so every call finds the session one source newer
and takes it in; at 100 KB the session is at its bound, so the oldest sources
are evicted as it goes) and `read, then call` (a tool whose action declares
no provenance returns 1 KB of mail-like text labelled untrusted, then the
payment is called: one row is both calls, so what taking 1 KB in costs is
counted whenever the index does the work, at the read or at the next lookup;
at the 100 KB bound). Last, the CPU time of the first call in a session a gate
has not seen (after a restart, on another node): the index built from the
store and the call's two values looked up in it.

`--against REF` adds a variant `with REF`: the same gate and bundle with the
session indexes of `warded/provenance.py` as it is at git revision REF (loaded
beside this checkout's), so a change to the index is measured before and
after in one run.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from typing import Any

from timing import Timed
from warded import (
    BundleFiles,
    Gate,
    ManualClock,
    MemoryStore,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
)
from warded.model import Source
from warded.provenance import LIMIT, Index, Indexes

AGENT = Principal.agent("bot")
USER_IBAN = "GB33BUKB20201555555555"
SCHEMA = """
type Session = { id: String, labels: Set<String>, calls: Long };
type Now = { epoch: Long, hour: Long, weekday: Long };
entity Agent;
entity Tool;
action read_mail appliesTo {
  principal: [Agent], resource: [Tool],
  context: { args: {}, session: Session, now: Now },
};
action send_money, send_money_noted appliesTo {
  principal: [Agent], resource: [Tool],
  context: {
    args: { recipient: String, amount: Long, subject: String },
    session: Session, now: Now%s
  },
};
"""
DECLARED = ",\n    provenance: { recipient: Set<String>, subject: Set<String> }"
PAY = 'permit (principal, action in [Action::"send_money", Action::"send_money_noted"], resource)'
READ = 'permit (principal, action == Action::"read_mail", resource);\n'
WITH = (
    PAY
    + """
when {
  context.provenance.recipient.containsAny(["user", "approved"]) && context.args.amount < 1000
};
"""
)
WITHOUT = (
    PAY
    + """
when { context.args.recipient != "" && context.args.amount < 1000 };
"""
)
WORDS = (
    "the",
    "invoice",
    "payment",
    "please",
    "account",
    "transfer",
    "meeting",
    "report",
    "attached",
    "regards",
    "tomorrow",
    "quarter",
    "budget",
    "review",
    "contract",
    "renewal",
    "schedule",
    "update",
    "thanks",
    "team",
)


def bundle(declared: bool) -> PolicyBundle:
    schema = SCHEMA % (DECLARED if declared else "")
    return PolicyBundle.load(
        BundleFiles(
            (("p.cedar", READ + (WITH if declared else WITHOUT)),), ("s.cedarschema", schema), None
        )
    )


def filler(rng: random.Random, size: int) -> str:
    """Mail-like text of about `size` characters with identifiers in it."""
    parts: list[str] = []
    total = 0
    while total < size:
        kind = rng.random()
        if kind < 0.05:
            word = f"DE{rng.randrange(10**19, 10**20)}"
        elif kind < 0.1:
            word = f"{rng.choice(WORDS)}.{rng.randrange(1000)}@example.com"
        elif kind < 0.13:
            word = f"https://site{rng.randrange(100)}.example.org/p/{rng.randrange(10**6)}"
        elif kind < 0.16:
            word = f"doc-{rng.randrange(10**5)}.pdf"
        else:
            word = rng.choice(WORDS)
        parts.append(word)
        total += len(word) + 1
    return " ".join(parts)


MAIL = filler(random.Random(7), 1000)


def gate(
    declared: bool, remembered: int, bound: int, indexes: type[Any] = Indexes
) -> tuple[Gate, Session]:
    """A gate and a session remembering about `remembered` characters, the user's
    request last (so that eviction takes the oldest tool output first); `indexes`
    is the gate's session index cache (`Indexes`, or an older revision's)."""
    g = Gate(bundle(declared), store=MemoryStore(), clock=ManualClock(), remember=bound)
    g._indexes = indexes()
    g.register("read_mail", {"type": "object"}, lambda: MAIL, labels=["untrusted"])
    for name, result in (("send_money", None), ("send_money_noted", {"status": "sent"})):
        g.register(
            name,
            {
                "type": "object",
                "properties": {
                    "recipient": {"type": "string"},
                    "amount": {"type": "integer"},
                    "subject": {"type": "string"},
                },
                "required": ["recipient", "amount", "subject"],
            },
            lambda result=result, **_: result,
        )
    session = Session(f"bench-{declared}-{remembered}-{bound}")
    rng = random.Random(remembered)
    request = f"Please pay {USER_IBAN} for the March invoice, subject invoice March"
    with g.store.transaction() as tx:
        filled = 0
        n = 0
        while filled < remembered - len(request):
            text = filler(rng, min(1000, remembered - len(request) - filled))
            labels = ("untrusted",) if n % 2 else ()
            tx.remember(session.id, [Source("tool:read_mail", labels, (text,))], limit=bound)
            filled += len(text)
            n += 1
    g.trust(session, request)
    return g, session


def indexes_at(ref: str) -> type[Any]:
    """`Indexes` of `warded/provenance.py` at git revision `ref`, loaded as a module
    of its own beside this checkout's."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = subprocess.run(
        ["git", "show", f"{ref}:src/warded/provenance.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = f"warded._provenance_at_{ref}"
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:src/warded/provenance.py", "exec"), module.__dict__)
    indexes: type[Any] = module.Indexes
    return indexes


def read_then_call(g: Gate, session: Session, args: dict[str, Any]) -> Any:
    g.call(AGENT, "read_mail", {}, session)
    return g.call(AGENT, "send_money", args, session)


@dataclass
class Series(Timed):
    """One (row, size, variant): its calls, timed in interleaved passes."""

    row: str
    size: str
    label: str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=3000, help="calls per series")
    parser.add_argument("--passes", type=int, default=20, help="interleaved passes")
    parser.add_argument("--against", help="git revision whose session indexes to add as a variant")
    opts = parser.parse_args(argv)
    variants: list[tuple[str, bool, type[Any]]] = [
        ("without", False, Indexes),
        ("with", True, Indexes),
    ]
    if opts.against:
        variants.append((f"with {opts.against}", True, indexes_at(opts.against)))
    args = {"recipient": USER_IBAN, "amount": 20, "subject": "invoice March"}
    series: list[Series] = []
    rows = [(size, "call", "send_money", 0) for size in (0, 10_000, 100_000)]
    rows += [(size, "decide", "send_money", 0) for size in (0, 10_000, 100_000)]
    rows += [(size, "call, noted", "send_money_noted", 0) for size in (0, 10_000)]
    rows.append((100_000, "call, noted", "send_money_noted", 100_000))  # at the bound
    rows.append((100_000, "read, then call", "read_mail", 100_000))
    for size, row, tool, bound in rows:
        for label, declared, indexes in variants:
            g, session = gate(declared, size, bound or LIMIT, indexes)
            if row == "decide":
                fn = functools.partial(g.decide, AGENT, tool, args, session)
            elif row == "read, then call":
                fn = functools.partial(read_then_call, g, session, args)
            else:
                fn = functools.partial(g.call, AGENT, tool, args, session)
            answer = fn()
            assert not isinstance(answer, Refusal), answer
            series.append(Series(fn, row, f"{size // 1000} KB", label))
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for s in series:  # warm up: caches, indexes, and the compiled slices
        for _ in range(200):
            s.fn()
    per_pass = max(1, opts.iterations // opts.passes)
    for _ in range(opts.passes):
        for s in series:
            s.run(per_pass)
    without = {(s.row, s.size): s for s in series if s.label == "without"}
    print(
        f"{'path':<15} {'remembered':<11} {'provenance':<15} median µs  p99 µs  CPU µs (mean)"
        "  + median µs  + CPU µs"
    )
    for s in series:
        base = without[(s.row, s.size)]
        print(
            f"{s.row:<15} {s.size:<11} {s.label:<15} {s.median_us:9.1f} {s.p99_us:7.1f} "
            f"{s.cpu_us:14.1f} {s.median_us - base.median_us:+11.1f} {s.cpu_us - base.cpu_us:+9.1f}"
        )
    print(f"{opts.passes} interleaved passes of {per_pass} calls per series")
    builders = [("", Index)]
    if opts.against:
        builders.append((f" ({opts.against})", sys.modules[variants[-1][2].__module__].Index))
    names = ("recipient", "subject")
    for size in (10_000, 100_000):  # what a gate that has no index of the session yet pays
        g, session = gate(True, size, LIMIT)
        remembered = g.store.sources(session.id)
        builds: dict[str, list[int]] = {label: [] for label, _ in builders}
        for _ in range(5):
            for label, built in builders:
                cpu0 = time.thread_time_ns()
                built.of(remembered).provenance(args, names)
                builds[label].append(time.thread_time_ns() - cpu0)
        for label, _ in builders:
            print(
                f"index built from the store and two values looked up{label}, {size // 1000} KB: "
                f"{statistics.median(builds[label]) / 1e6:.2f} ms CPU (median of 5)"
            )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
