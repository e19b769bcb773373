"""What argument provenance costs a call, by how much the session remembers.

One run, the same calls for every variant, measured in interleaved passes
(every series in every pass, so load that comes and goes hits them alike),
with this thread's CPU time beside the wall clock:

    .venv/bin/python benchmarks/provenance.py [--iterations N] [--passes P]

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
`call, noted` (the tool returns a small result, which is remembered, so every
call finds the session one source newer and extends the index; at 100 KB the
session is at its bound, so the oldest sources are evicted as it goes).
Last, the CPU time to build a session's index from the store (what the first
call in a session costs a gate that has not seen it: after a restart, on
another node).
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass

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
from warded.provenance import LIMIT, Index

AGENT = Principal.agent("bot")
USER_IBAN = "GB33BUKB20201555555555"
SCHEMA = """
type Session = { id: String, labels: Set<String>, calls: Long };
type Now = { epoch: Long, hour: Long, weekday: Long };
entity Agent;
entity Tool;
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
        BundleFiles((("p.cedar", WITH if declared else WITHOUT),), ("s.cedarschema", schema), None)
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


def gate(declared: bool, remembered: int, bound: int) -> tuple[Gate, Session]:
    """A gate and a session remembering about `remembered` characters, the user's
    request last (so that eviction takes the oldest tool output first)."""
    g = Gate(bundle(declared), store=MemoryStore(), clock=ManualClock(), remember=bound)
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
    opts = parser.parse_args(argv)
    args = {"recipient": USER_IBAN, "amount": 20, "subject": "invoice March"}
    series: list[Series] = []
    rows = [(size, "call", "send_money", 0) for size in (0, 10_000, 100_000)]
    rows += [(size, "decide", "send_money", 0) for size in (0, 10_000, 100_000)]
    rows += [(size, "call, noted", "send_money_noted", 0) for size in (0, 10_000)]
    rows.append((100_000, "call, noted", "send_money_noted", 100_000))  # at the bound
    for size, row, tool, bound in rows:
        for label, declared in (("without", False), ("with", True)):
            g, session = gate(declared, size, bound or LIMIT)
            if row == "decide":
                fn = functools.partial(g.decide, AGENT, tool, args, session)
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
        f"{'path':<12} {'remembered':<11} {'provenance':<11} median µs  p99 µs  CPU µs (mean)"
        "  + median µs  + CPU µs"
    )
    for s in series:
        base = without[(s.row, s.size)]
        print(
            f"{s.row:<12} {s.size:<11} {s.label:<11} {s.median_us:9.1f} {s.p99_us:7.1f} "
            f"{s.cpu_us:14.1f} {s.median_us - base.median_us:+11.1f} {s.cpu_us - base.cpu_us:+9.1f}"
        )
    print(f"{opts.passes} interleaved passes of {per_pass} calls per series")
    for size in (10_000, 100_000):  # what a gate that has no index of the session yet pays
        g, session = gate(True, size, LIMIT)
        remembered = g.store.sources(session.id)
        builds = []
        for _ in range(5):
            cpu0 = time.thread_time_ns()
            Index.of(remembered)
            builds.append(time.thread_time_ns() - cpu0)
        print(
            f"index built from the store, {size // 1000} KB: "
            f"{statistics.median(builds) / 1e6:.1f} ms CPU (median of 5)"
        )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
