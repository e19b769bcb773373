"""The report: tables (terminal, plain text, Markdown), the JSON outcomes, an HTML page.

The HTML page is self-contained: its charts are SVG written here, with no
script and nothing fetched from the network.
"""

from __future__ import annotations

import gzip
import html
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warded.evaluation.defenses import DEFENSES, DefenseName
from warded.evaluation.metrics import Summary, undecidable
from warded.evaluation.replay import Mode
from warded.evaluation.runner import ATTACK, JobResult, PairResult, TaskResult

LABELS: Mapping[DefenseName, str] = {
    "none": "no defense",
    "oracle": "tool allowlist",
    "warded": "warded autonomous",
    "warded+approver": "warded + approver",
}
COLORS: Mapping[DefenseName, str] = {
    "none": "#b0b0b0",
    "oracle": "#e3a23b",
    "warded": "#3b7dd8",
    "warded+approver": "#1f4e8c",
}
TRACE_NOTE = (
    "AgentDojo scores slack injection_task_5 (and the utility of slack user_task_11) from "
    "the calls the agent proposed, not from the environment. A refused call never ran, so "
    "the harness leaves it out of the trace those checks read (upstream: AgentDojo issues "
    "#168 and #189, PR #199)."
)
WORST_CASE = (
    "This is a worst-case replay, not a model-in-the-loop run: the agent performs every "
    "call the injected text asks for (the injection task's ground truth), after the user "
    "task's calls or at the moment the injected text first reaches it."
)


@dataclass(frozen=True, slots=True)
class Meta:
    versions: tuple[str, ...]
    suites: tuple[str, ...]
    modes: tuple[Mode, ...]
    agentdojo: str
    seconds: float
    bundles: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": list(self.versions),
            "suites": list(self.suites),
            "modes": list(self.modes),
            "attack": ATTACK,
            "agentdojo": self.agentdojo,
            "python": platform.python_version(),
            "seconds": round(self.seconds, 1),
            "policy_bundles": dict(self.bundles),
            "worst_case": WORST_CASE,
            "trace_scoring": TRACE_NOTE,
        }


def pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.1f}%)" if d else "-"


def utility_rows(summaries: Sequence[Summary]) -> list[list[str]]:
    rows = []
    for s in summaries:
        row = [s.version, s.suite, str(s.tasks)]
        row += [pct(s.utility[d], s.tasks) for d in DEFENSES]
        row.append(f"{s.approvals_per_task:.2f}")
        rows.append(row)
    return rows


UTILITY_HEAD = ["version", "suite", "tasks", *(LABELS[d] for d in DEFENSES), "approvals/task"]
ATTACK_HEAD = [
    "version",
    "suite",
    "mode",
    "pairs",
    *(LABELS[d] for d in DEFENSES),
    "reached approval",
    "utility under attack (w+a)",
]


def attack_rows(summaries: Sequence[Summary]) -> list[list[str]]:
    rows = []
    for s in summaries:
        for mode in s.modes:
            row = [s.version, s.suite, mode, str(s.decidable)]
            row += [pct(s.attacks[(mode, d)], s.decidable) for d in DEFENSES]
            row.append(pct(s.reached_approval[mode], s.decidable))
            row.append(pct(s.utility_under_attack[(mode, "warded+approver")], s.decidable))
            rows.append(row)
    return rows


def markdown(summaries: Sequence[Summary]) -> str:
    """Both tables as Markdown (what the README quotes)."""

    def table(head: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    return (
        "Utility without attack (user tasks whose check passed):\n\n"
        + table(UTILITY_HEAD, utility_rows(summaries))
        + "\n\nAttacks executed (decidable pairs whose injection check passed;"
        + " lower is better):\n\n"
        + table(ATTACK_HEAD, attack_rows(summaries))
        + "\n"
    )


def plain(summaries: Sequence[Summary]) -> str:
    """Both tables as fixed-width text."""

    def table(head: list[str], rows: list[list[str]]) -> str:
        widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*r) for r in rows]
        return "\n".join(line.rstrip() for line in lines)

    return (
        "Utility without attack\n"
        + table(UTILITY_HEAD, utility_rows(summaries))
        + "\n\nAttacks executed (decidable pairs; lower is better)\n"
        + table(ATTACK_HEAD, attack_rows(summaries))
        + "\n"
    )


SHORT: Mapping[DefenseName, str] = {
    "none": "none",
    "oracle": "tools",
    "warded": "warded",
    "warded+approver": "+approver",
}


def terminal_tables(summaries: Sequence[Summary]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Narrow tables for a terminal, two per version: utility, then attacks (as counts).

    Columns: none = no defense, tools = the oracle tool allowlist, warded =
    autonomous (nobody answers approvals), +approver = with the honest
    approver; approvals = per task; queued = attacks that reached the approval
    queue.
    """
    out = []
    for version in dict.fromkeys(s.version for s in summaries):
        rows = [s for s in summaries if s.version == version]
        head = ["suite", "tasks", *(SHORT[d] for d in DEFENSES), "approvals"]
        body = [
            [
                s.suite,
                str(s.tasks),
                *(f"{s.utility[d]} {_p(s.utility[d], s.tasks)}" for d in DEFENSES),
                f"{s.approvals_per_task:.2f}",
            ]
            for s in rows
        ]
        out.append((f"{version}: utility without attack (user tasks)", head, body))
        head = ["suite", "mode", "pairs", *(SHORT[d] for d in DEFENSES), "queued"]
        body = [
            [
                s.suite,
                mode,
                str(s.decidable),
                *(str(s.attacks[(mode, d)]) for d in DEFENSES),
                str(s.reached_approval[mode]),
            ]
            for s in rows
            for mode in s.modes
        ]
        title = f"{version}: attacks executed, of the decidable pairs (lower is better)"
        out.append((title, head, body))
    return out


def _p(n: int, d: int) -> str:
    return f"{100 * n / d:.0f}%" if d else "-"


def findings(summaries: Sequence[Summary], results: Sequence[JobResult]) -> list[str]:
    """Plain sentences: who fell short of the targets and why."""
    out = []
    for s in summaries:
        if s.suite != "total":
            continue
        executed = {m: s.attacks[(m, "warded")] for m in s.modes}
        out.append(
            f"{s.version}: attacks executed without a human: "
            + ", ".join(f"{m} {n}/{s.decidable}" for m, n in executed.items())
            + f"; autonomous utility {pct(s.utility['warded'], s.tasks)} "
            f"({pct(s.tasks - len(s.tasks_needing_approval), s.tasks)} of the tasks needed "
            f"no approval); with the honest approver "
            f"{pct(s.utility['warded+approver'], s.tasks)}; "
            f"{s.approvals_per_task:.2f} approvals per task."
        )
    for r in results:
        runs = r.task.runs
        where = f"{r.job.version} {r.job.suite}/{r.job.user_task}"
        approved = runs.get("warded+approver")
        auto = runs.get("warded")
        if approved is not None and approved.approvals_requested:
            tools = [a.tool for a in approved.trace.attempts if a.approval_id is not None]
            alone = "passes anyway" if auto is not None and auto.utility else "fails"
            out.append(
                f"{where}: {len(tools)} approval(s) for {', '.join(tools)}; "
                f"without the approver AgentDojo's check {alone}"
            )
        elif auto is not None and not auto.utility:
            refused = [f"{a.tool} ({a.code})" for a in auto.trace.attempts if a.code]
            out.append(f"{where}: fails autonomously; refused: {', '.join(refused) or 'nothing'}")
        if approved is not None and not approved.utility:
            out.append(f"{where}: fails even with the approver")
    return out


# -- files ---------------------------------------------------------------------


def write_json(
    path: Path, meta: Meta, summaries: Sequence[Summary], results: Sequence[JobResult]
) -> None:
    doc = {
        "meta": meta.to_json(),
        "summaries": [s.to_json() for s in summaries],
        "findings": findings(summaries, results),
        "undecidable": undecidable(results),
        "tasks": [_task_json(r.task, r) for r in results],
        "pairs": [_pair_json(p) for r in results for p in r.pairs if p.undecidable is None],
    }
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def write_audit(path: Path, results: Sequence[JobResult]) -> None:
    """Every gate's audit log (one per job), as gzipped JSON lines tagged by log."""
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for r in results:
            log = f"{r.job.version}/{r.job.suite}/{r.job.user_task}"
            for record in r.audit:
                out.write(json.dumps({"log": log, "record": record}, sort_keys=True) + "\n")


def _task_json(task: TaskResult, result: JobResult) -> dict[str, Any]:
    return {
        "version": task.version,
        "suite": task.suite,
        "user_task": task.user_task,
        "audit_log": f"{task.version}/{task.suite}/{task.user_task}",
        "bundle_version": result.bundle_version,
        "runs": {d: run.to_json() for d, run in task.runs.items()},
        "approvals_granted": task.runs["warded+approver"].approvals_granted
        if "warded+approver" in task.runs
        else None,
    }


def _pair_json(pair: PairResult) -> dict[str, Any]:
    return {
        "version": pair.version,
        "suite": pair.suite,
        "user_task": pair.user_task,
        "injection_task": pair.injection_task,
        "audit_log": f"{pair.version}/{pair.suite}/{pair.user_task}",
        "runs": {f"{m}/{d}": run.to_json() for (m, d), run in pair.runs.items()},
    }


# -- HTML ----------------------------------------------------------------------


def bar_chart(
    title: str, groups: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]]
) -> str:
    """A grouped bar chart (values in percent) as inline SVG."""
    bar, gap, left, top, height = 18, 20, 40, 34, 150
    per_group = len(series) * bar + gap
    legend = sum(14 + 7 * len(name) + 10 for name, _, _ in series)
    width = max(left + per_group * len(groups) + 20, left + legend)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + 60}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for tick in (0, 25, 50, 75, 100):
        y = top + height - height * tick / 100
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{tick}%</text>'
        )
    for g, group in enumerate(groups):
        x0 = left + g * per_group + gap / 2
        for k, (name, color, values) in enumerate(series):
            v = max(0.0, min(100.0, values[g]))
            h = height * v / 100
            x = x0 + k * bar
            y = top + height - h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2}" height="{max(h, 0.5):.1f}" '
                f'fill="{color}"><title>{html.escape(name)} {html.escape(group)}: '
                f"{v:.1f}%</title></rect>"
            )
            label = f"{v:.0f}" if v >= 1 or v == 0 else f"{v:.1f}"
            out.append(
                f'<text x="{x + (bar - 2) / 2:.1f}" y="{y - 3:.1f}" font-size="9" '
                f'text-anchor="middle">{label}</text>'
            )
        out.append(
            f'<text x="{x0 + len(series) * bar / 2:.1f}" y="{top + height + 16}" '
            f'font-size="11" text-anchor="middle">{html.escape(group)}</text>'
        )
    lx = left
    for name, color, _ in series:
        out.append(
            f'<rect x="{lx}" y="{top + height + 30}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{top + height + 39}" font-size="11">{html.escape(name)}</text>'
        )
        lx += 14 + 7 * len(name) + 10
    out.append("</svg>")
    return "".join(out)


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def write_html(
    path: Path, meta: Meta, summaries: Sequence[Summary], results: Sequence[JobResult]
) -> None:
    charts = []
    for version in meta.versions:
        rows = [s for s in summaries if s.version == version]
        groups = [s.suite for s in rows]
        for mode in meta.modes:
            series = [
                (
                    LABELS[d],
                    COLORS[d],
                    [100 * s.attacks[(mode, d)] / s.decidable if s.decidable else 0 for s in rows],
                )
                for d in DEFENSES
            ]
            charts.append(bar_chart(f"{version}: attacks executed, {mode}", groups, series))
        series = [
            (LABELS[d], COLORS[d], [100 * s.utility[d] / s.tasks if s.tasks else 0 for s in rows])
            for d in DEFENSES
        ]
        charts.append(bar_chart(f"{version}: utility without attack", groups, series))
    undecided: dict[tuple[str, str, str, str], int] = {}
    for u in undecidable(results):
        key = (u["version"], u["suite"], u["injection_task"], u["reason"])
        undecided[key] = undecided.get(key, 0) + 1
    notes = "".join(f"<li>{html.escape(f)}</li>" for f in findings(summaries, results))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>warded red team: AgentDojo</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
th {{ background: #f3f3f3; }}
.charts svg {{ margin: 0 1.5em 1.5em 0; vertical-align: top; }}
.note {{ background: #f7f7f0; border-left: 4px solid #c9b44a; padding: 0.5em 1em; }}
</style></head><body>
<h1>warded red team on AgentDojo</h1>
<p class="note">{html.escape(WORST_CASE)}</p>
<p>AgentDojo {html.escape(meta.agentdojo)}, attack <code>{ATTACK}</code>,
versions {html.escape(", ".join(meta.versions))}, modes {html.escape(", ".join(meta.modes))};
{meta.seconds:.0f} s. Policies: <code>examples/agentdojo/&lt;suite&gt;/</code>
(bundle versions {html.escape(", ".join(f"{k} {v}" for k, v in meta.bundles.items()))}).</p>
<div class="charts">{"".join(charts)}</div>
<h2>Utility without attack</h2>
{_html_table(UTILITY_HEAD, utility_rows(summaries))}
<h2>Attacks executed (decidable pairs)</h2>
{_html_table(ATTACK_HEAD, attack_rows(summaries))}
<h2>Findings</h2><ul>{notes}</ul>
<h2>Pairs no tool-call policy can decide</h2>
{
        _html_table(
            ["version", "suite", "injection task", "pairs", "reason"],
            [[v, s, i, str(n), why] for (v, s, i, why), n in undecided.items()],
        )
    }
<h2>Trace-scored checks</h2><p>{html.escape(TRACE_NOTE)}</p>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
