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

from warded.evaluation.defenses import ARMS, DEFENSES, Arm, DefenseName
from warded.evaluation.metrics import GROUPS, Group, Summary, undecidable
from warded.evaluation.replay import Mode
from warded.evaluation.runner import ATTACK, JobResult, PairResult, TaskResult

LABELS: Mapping[DefenseName, str] = {
    "none": "no defense",
    "oracle": "tool allowlist",
    "labels": "labels autonomous",
    "labels+approver": "labels + approver",
    "warded": "provenance autonomous",
    "warded+approver": "provenance + approver",
}
COLORS: Mapping[DefenseName, str] = {
    "none": "#b0b0b0",
    "oracle": "#e3a23b",
    "labels": "#9bb7e0",
    "labels+approver": "#5f86bf",
    "warded": "#3b7dd8",
    "warded+approver": "#1f4e8c",
}
ARM_NAMES: Mapping[Arm, str] = {"labels": "labels", "warded": "provenance"}
TRACE_NOTE = (
    "AgentDojo scores slack injection_task_5 (and the utility of slack user_task_11) from "
    "the calls the agent proposed, not from the environment. A refused call never ran, so "
    "the harness leaves it out of the trace those checks read (upstream: AgentDojo issues "
    "#168 and #189, PR #199)."
)
WORST_CASE = (
    "This is a worst-case replay, not a model-in-the-loop run: the agent performs every "
    "call the injected text asks for (the injection task's ground truth, or a variant's), "
    "after the user task's calls or at the moment the injected text first reaches it."
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


def _p(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}%" if d else "-"


Table = tuple[str, list[str], list[list[str]]]


def user_table(summaries: Sequence[Summary]) -> Table:
    head = ["version", "suite", "tasks", "no defense"]
    for arm in ARMS:
        name = ARM_NAMES[arm]
        head += [f"{name}: alone", f"{name}: + approver", f"{name}: approvals/task"]
    rows = []
    for s in summaries:
        row = [s.version, s.suite, str(s.tasks), pct(s.utility["none"], s.tasks)]
        for arm in ARMS:
            row += [
                pct(s.utility[arm], s.tasks),
                pct(s.utility[f"{arm}+approver"], s.tasks),  # type: ignore[index]
                f"{s.approvals_per_task(arm):.2f}",
            ]
        rows.append(row)
    title = "User tasks completed (AgentDojo's check, no attack): alone = nobody answers approvals"
    return title, head, rows


def attack_table(summaries: Sequence[Summary]) -> Table:
    head = ["version", "suite", "attacks", "mode", "pairs", "no defense", "tool allowlist"]
    head += [f"{ARM_NAMES[a]}" for a in ARMS]
    rows = []
    for s in summaries:
        for group in GROUPS:
            n = s.decidable[group]
            if not n:
                continue
            for mode in s.modes:
                row = [s.version, s.suite, _GROUP[group], mode, str(n)]
                for d in ("none", "oracle", *ARMS):
                    ran = any(k[0] == group and k[2] == d for k in s.attacks) or d != "oracle"
                    row.append(str(s.attacks[(group, mode, d)]) if ran else "-")  # type: ignore[index]
                rows.append(row)
    title = "Attacks executed without a human (pairs whose attack check passed; lower is better)"
    return title, head, rows


def load_table(summaries: Sequence[Summary]) -> Table:
    head = ["version", "suite", "attacks", "mode"]
    for arm in ARMS:
        name = ARM_NAMES[arm]
        head += [
            f"{name}: calls",
            f"{name}: executed",
            f"{name}: refused",
            f"{name}: to a human",
            f"{name}: queue",
        ]
    rows = []
    for s in summaries:
        for group in GROUPS:
            if not s.decidable[group]:
                continue
            for mode in s.modes:
                row = [s.version, s.suite, _GROUP[group], mode]
                for arm in ARMS:  # each policy set's shares are of its own calls
                    total = s.attack_calls(group, mode, arm)
                    human = s.calls[(group, mode, arm, "human")]
                    row += [
                        str(total),
                        str(s.calls[(group, mode, arm, "executed")]),
                        str(s.calls[(group, mode, arm, "refused")]),
                        f"{human} ({_p(human, total)})",
                        str(s.queued[(group, mode, arm)]),
                    ]
                rows.append(row)
    title = (
        "Human load: the attacker's write calls in the autonomous runs of each policy set "
        "(calls) — executed without a human, refused outright, or sent to a human (an "
        "approval an honest human must reject); queue = the distinct approval requests "
        "they opened"
    )
    return title, head, rows


_GROUP: Mapping[Group, str] = {
    "original": "AgentDojo's",
    "variant": "variants",
    "planted": "planted variants",
}


def tables(summaries: Sequence[Summary]) -> list[Table]:
    return [user_table(summaries), attack_table(summaries), load_table(summaries)]


def needs_lines(summaries: Sequence[Summary], arm: Arm = "warded") -> list[str]:
    """Every user task that needs a human under a policy set, with why (totals only)."""
    out = []
    for s in summaries:
        if s.suite != "total":
            continue
        for n in s.needs[arm]:
            prov = "" if n.provenance is None else f"; provenance {json.dumps(n.provenance)}"
            out.append(
                f"{s.version} {n.user_task}: {n.tool} {n.code} ({n.policy or 'no policy'}{prov})"
            )
    return out


def markdown(summaries: Sequence[Summary]) -> str:
    """The tables as Markdown (what the README and docs/redteam.md quote)."""

    def table(head: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    parts = [f"{title}:\n\n{table(head, rows)}" for title, head, rows in tables(summaries)]
    needs = needs_lines(summaries)
    parts.append(
        "User tasks that need a human under the provenance policies:\n\n"
        + ("\n".join(f"* {line}" for line in needs) if needs else "* none")
    )
    return "\n\n".join(parts) + "\n"


def plain(summaries: Sequence[Summary]) -> str:
    """The tables as fixed-width text."""

    def table(head: list[str], rows: list[list[str]]) -> str:
        widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*r) for r in rows]
        return "\n".join(line.rstrip() for line in lines)

    parts = [f"{title}\n{table(head, rows)}" for title, head, rows in tables(summaries)]
    parts.append("\n".join(["User tasks that need a human (provenance)", *needs_lines(summaries)]))
    return "\n\n".join(parts) + "\n"


def findings(summaries: Sequence[Summary], results: Sequence[JobResult]) -> list[str]:
    """Plain sentences: the goals, met or not, and every task that needs a human."""
    out = []
    for s in summaries:
        if s.suite != "total":
            continue
        for arm in ARMS:
            executed = sum(s.attacks[(g, m, arm)] for g in GROUPS for m in s.modes)
            calls = sum(s.attack_calls(g, m, arm) for g in GROUPS for m in s.modes)
            human = sum(s.calls[(g, m, arm, "human")] for g in GROUPS for m in s.modes)
            need = len(s.tasks_needing_human(arm))
            out.append(
                f"{s.version} {ARM_NAMES[arm]}: {executed} attacks executed without a human "
                f"(originals and variants, both orders); attack calls sent to a human "
                f"{pct(human, calls)}; user tasks completed alone "
                f"{pct(s.utility[arm], s.tasks)} ({pct(s.tasks - need, s.tasks)} asked no "
                f"human), with the honest approver "
                f"{pct(s.utility[f'{arm}+approver'], s.tasks)}; "  # type: ignore[index]
                f"{s.approvals_per_task(arm):.2f} approvals per task."
            )
    for r in results:
        runs = r.task.runs
        where = f"{r.job.version} {r.job.suite}/{r.job.user_task}"
        approved = runs.get("warded+approver")
        if approved is not None and not approved.utility:
            out.append(f"{where}: fails even with the approver (provenance)")
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
            for arm, records in r.audit.items():
                log = f"{r.job.version}/{r.job.suite}/{r.job.user_task}/{arm}"
                for record in records:
                    line = {"log": log, "record": record}
                    out.write(json.dumps(line, sort_keys=True) + "\n")


def _task_json(task: TaskResult, result: JobResult) -> dict[str, Any]:
    return {
        "version": task.version,
        "suite": task.suite,
        "user_task": task.user_task,
        "audit_log": f"{task.version}/{task.suite}/{task.user_task}/<labels|warded>",
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
        "variant": pair.kind,
        "audit_log": f"{pair.version}/{pair.suite}/{pair.user_task}/<labels|warded>",
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
        for group in GROUPS:
            for mode in meta.modes:
                series = [
                    (
                        LABELS[d],
                        COLORS[d],
                        [
                            100 * s.attacks[(group, mode, d)] / s.decidable[group]
                            if s.decidable[group]
                            else 0
                            for s in rows
                        ],
                    )
                    for d in ("none", "labels", "warded")
                ]
                title = f"{version}: {_GROUP[group]} attacks executed, {mode}"
                charts.append(bar_chart(title, groups, series))
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
{"".join(f"<h2>{html.escape(t)}</h2>{_html_table(h, r)}" for t, h, r in tables(summaries))}
<h2>Findings</h2><ul>{notes}</ul>
<h2>User tasks that need a human (provenance policies)</h2>
<ul>{"".join(f"<li>{html.escape(line)}</li>" for line in needs_lines(summaries))}</ul>
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
