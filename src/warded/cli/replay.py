"""`warded replay` and `warded audit shadow`: a candidate bundle against real traffic.

`replay DB --bundle DIR` re-decides every recorded decision with the
candidate bundle (`warded.replay`) and lists every one that would flip,
grouped by agent and tool, with the record numbers. It exits 1 if any call
that was refused would now be allowed (a widening), unless
`--allow-widening`. `audit shadow DB` reports where a shadow bundle, run
beside the live one (`Gate.shadow`), disagreed with it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from warded.audit.record import AuditRecord
from warded.cli.audit import DB_ARG, open_store
from warded.cli.common import emit_json, format_option
from warded.policy.bundle import PolicyBundle
from warded.replay import Outcome
from warded.replay import replay as replay_records


@dataclass(frozen=True, slots=True)
class Flip:
    """One recorded decision that the other bundle decides differently."""

    seq: int
    principal: str
    tool: str
    change: str  # "allow → deny", "deny → allow", "approval added", ...
    before: str
    after: str


WIDENING = ("deny → allow", "approval removed")


def change(before: Outcome, after: Outcome) -> str:
    """How a (verdict, approval, policies) outcome changed, most important first."""
    if before[0] != after[0]:
        return f"{before[0]} → {after[0]}"
    if before[1] != after[1]:
        return "approval added" if after[1] else "approval removed"
    return "other policies"


def _shown(o: Outcome) -> str:
    text = o[0] + (" after approval" if o[1] else "")
    return text + (f" by {', '.join(o[2])}" if o[2] else "")


@click.command()
@DB_ARG
@click.option(
    "--bundle",
    "bundle_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The candidate policy bundle.",
)
@click.option(
    "--allow-widening", is_flag=True, help="Exit 0 even if a refused call would now be allowed."
)
@format_option("text", "json")
@click.pass_context
def replay(ctx: click.Context, db: Path, bundle_dir: Path, allow_widening: bool, fmt: str) -> None:
    """Re-decide the decisions recorded in DB with a candidate bundle.

    Prints the counts by outcome and every decision that would flip
    (allow → deny, deny → allow, approvals added or removed, other
    determining policies), grouped by agent and tool, with record numbers.
    What depends on store state (an approval granted, a limit reached) is not
    part of a verdict. Exit 1 if a refused call would be allowed, or would no
    longer need approval, unless --allow-widening.
    """
    bundle = PolicyBundle.from_directory(bundle_dir)
    with open_store(db) as store:
        records = list(store.records())
    bodies = {r.body["seq"]: r.body for r in records}
    results = replay_records(records, bundle)
    flips = [
        Flip(
            r.seq,
            bodies[r.seq]["principal"],
            bodies[r.seq]["tool"],
            change(r.recorded, r.replayed),
            _shown(r.recorded),
            _shown(r.replayed),
        )
        for r in results
        if r.status == "different" and r.replayed is not None
    ]
    skipped = [{"seq": r.seq, "reason": r.reason} for r in results if r.status == "skipped"]
    counts = Counter(r.status for r in results)
    widened = [f for f in flips if f.change in WIDENING]
    if fmt == "json":
        emit_json(
            {
                "bundle_version": bundle.version,
                "decisions": len(results),
                "same": counts["same"],
                "different": counts["different"],
                "skipped": skipped,
                "changes": dict(Counter(f.change for f in flips)),
                "widening": len(widened),
                "flips": [_flip_json(f) for f in flips],
            }
        )
    else:
        click.echo(
            f"{len(results)} recorded decisions against bundle {bundle.version}: "
            f"{counts['same']} the same, {counts['different']} different, "
            f"{counts['skipped']} not replayable"
        )
        for name, n in sorted(Counter(f.change for f in flips).items()):
            click.echo(f"  {name}: {n}")
        _grouped(flips)
        for s in skipped:
            click.echo(f"  record {s['seq']} not replayed: {s['reason']}")
        if widened:
            verdict = "allowed" if allow_widening else "refused (give --allow-widening to accept)"
            click.echo(f"{len(widened)} widening change(s): {verdict}")
    ctx.exit(1 if widened and not allow_widening else 0)


def _flip_json(f: Flip) -> dict[str, Any]:
    return {
        "seq": f.seq,
        "principal": f.principal,
        "tool": f.tool,
        "change": f.change,
        "before": f.before,
        "after": f.after,
    }


def _grouped(flips: Iterable[Flip]) -> None:
    groups: dict[tuple[str, str], list[Flip]] = defaultdict(list)
    for f in flips:
        groups[(f.principal, f.tool)].append(f)
    for (principal, tool), mine in sorted(groups.items()):
        click.echo(f"{principal} {tool}:")
        by: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for f in mine:
            by[(f.change, f.before, f.after)].append(f.seq)
        for (what, before, after), seqs in by.items():
            click.echo(f"  {what}: {before} → {after}  records {_ranges(seqs)}")


def _ranges(seqs: list[int]) -> str:
    out: list[str] = []
    start = prev = seqs[0]
    for s in [*seqs[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ", ".join(out)


# -- shadow mode ---------------------------------------------------------------------


@dataclass
class ShadowReport:
    """Shadow decisions by agent and tool, and those whose verdict differs from the live one."""

    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        differ = Counter((d["principal"], d["tool"]) for d in self.disagreements)
        return {
            "shadow_decisions": sum(self.decisions.values()),
            "by_agent_and_tool": [
                {"principal": p, "tool": t, "shadow_decisions": n, "disagreements": differ[(p, t)]}
                for (p, t), n in sorted(self.decisions.items())
            ],
            "disagreements": self.disagreements,
        }


def disagreements(records: Iterable[AuditRecord]) -> ShadowReport:
    """Shadow decisions, and those whose verdict differs from the live decision of the call."""
    live: dict[str, Mapping[str, Any]] = {}
    report = ShadowReport()
    for record in records:
        b = record.body
        if b.get("kind") != "decision":
            continue
        if b.get("mode") != "shadow":
            live[b["call"]] = b
            continue
        report.decisions[(b["principal"], b["tool"])] += 1
        enforced = live.get(b["call"])
        if enforced is None:
            continue
        before = _policy_verdict(enforced)
        if before != b["decision"]:
            report.disagreements.append(
                {
                    "seq": enforced["seq"],
                    "shadow_seq": b["seq"],
                    "principal": b["principal"],
                    "tool": b["tool"],
                    "live": before,
                    "live_code": enforced.get("code"),
                    "shadow": b["decision"],
                    "shadow_version": b["bundle_version"],
                    "live_policies": enforced["policies"],
                    "shadow_policies": b["policies"],
                }
            )
    return report


def _policy_verdict(body: Mapping[str, Any]) -> str:
    """What the live policy said: an approval or a limit held an allow back."""
    held = body.get("code") in ("approval_required", "limit_exceeded")
    return "allow" if body["decision"] == "allow" or held else "deny"


@click.command("shadow")
@DB_ARG
@format_option("text", "json")
def shadow(db: Path, fmt: str) -> None:
    """Where the shadow bundle disagreed with the live one.

    A gate running a candidate beside the live bundle (`Gate.shadow`) logs
    both decisions of every call; this lists each call where the policy
    verdicts differ, grouped by agent and tool, with both record numbers.
    """
    with open_store(db) as store:
        report = disagreements(store.records())
    data = report.to_json()
    if fmt == "json":
        emit_json(data)
        return
    found = report.disagreements
    total = data["shadow_decisions"]
    click.echo(f"{total} shadow decisions, {len(found)} disagree with the live bundle")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for d in found:
        groups[(d["principal"], d["tool"])].append(d)
    for (principal, tool), mine in sorted(groups.items()):
        click.echo(
            f"{principal} {tool}: {len(mine)} of {report.decisions[(principal, tool)]} disagree"
        )
        for d in mine:
            live = d["live"] + (f" ({d['live_code']})" if d["live_code"] else "")
            click.echo(
                f"  record {d['seq']}: live {live}, shadow {d['shadow']} "
                f"(bundle {d['shadow_version']}, record {d['shadow_seq']})"
            )
