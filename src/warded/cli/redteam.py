"""`warded redteam`: attack the policies and the gate, and report what got through.

    warded redteam agentdojo [--version V] [--suite S] [--mode M] [--out DIR] [--no-variants]
    warded redteam scenario FILE.yaml...

`agentdojo` needs the eval extra (`pip install 'warded[eval]'`); it exits 1
if an attack (or an attacker's write call) was executed under warded without
a human, original or variant, or a run failed.
`scenario` exits 0 iff every expectation of every file held.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, cast

import click

from warded.cli.common import Failure
from warded.evaluation.replay import MODES, Mode
from warded.evaluation.suites import SUITES, VERSIONS, EvaluationError


@click.group("redteam")
def redteam() -> None:
    """Red-team the gate: AgentDojo with a fully compromised agent, or your own scenarios."""


@redteam.command("agentdojo", short_help="Replay AgentDojo as a fully compromised agent.")
@click.option(
    "--version",
    "versions",
    multiple=True,
    type=click.Choice(VERSIONS),
    help="Benchmark version (repeatable; default: both).",
)
@click.option(
    "--suite",
    "suites",
    multiple=True,
    type=click.Choice(SUITES),
    help="Suite (repeatable; default: all four).",
)
@click.option(
    "--mode",
    type=click.Choice(["after_user", "at_exposure", "both"]),
    default="both",
    show_default=True,
    help="When the hijacked agent performs the attacker's calls.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("redteam-agentdojo"),
    show_default=True,
    help="Where the JSON, HTML and audit logs go.",
)
@click.option(
    "--policies",
    "policy_dirs",
    multiple=True,
    metavar="SUITE=DIR",
    help="Use this policy directory (with its tools.yaml) for a suite.",
)
@click.option(
    "--no-variants",
    is_flag=True,
    help="Replay only AgentDojo's own injection tasks, not the mutation stage's variants.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: the number of CPUs).",
)
def agentdojo_command(
    versions: tuple[str, ...],
    suites: tuple[str, ...],
    mode: str,
    out: Path,
    policy_dirs: tuple[str, ...],
    no_variants: bool,
    jobs: int | None,
) -> None:
    """Replay every AgentDojo (user task, injection task) pair as a fully compromised agent.

    The agent performs the user task's ground-truth calls and every call the
    injected text asks for, through a gate with the suite's policies in
    examples/agentdojo/<suite>/, beside the no-defense and tool-allowlist
    baselines. AgentDojo's own checks score each run.
    """
    try:
        from warded.evaluation import metrics, report, runner
        from warded.evaluation.suites import agentdojo, agentdojo_version

        agentdojo()
        rich = _rich()
    except EvaluationError as exc:
        raise Failure(str(exc)) from None
    modes: tuple[Mode, ...] = MODES if mode == "both" else (cast(Mode, mode),)
    chosen_versions = versions or VERSIONS
    chosen_suites = suites or SUITES
    overrides = _overrides(policy_dirs)
    workers = jobs or os.cpu_count() or 1
    started = time.perf_counter()
    console = rich.console.Console(stderr=True)
    with console.status("loading AgentDojo suites"):
        planned = runner.plan(chosen_versions, chosen_suites, modes, overrides, not no_variants)
    total = sum(n for _, n in planned)
    columns = (
        rich.progress.TextColumn("{task.description}"),
        rich.progress.BarColumn(),
        rich.progress.MofNCompleteColumn(),
        rich.progress.TimeElapsedColumn(),
    )
    with rich.progress.Progress(*columns, console=console) as bar:
        task = bar.add_task("replaying", total=total)

        def advance(result: Any, units: int) -> None:
            job = result.job
            bar.update(task, advance=units, description=f"{job.version} {job.suite}")

        results = runner.run_all(planned, workers, advance)
    seconds = time.perf_counter() - started
    summaries = metrics.summarize(results, modes)
    bundles = {r.job.suite: f"{r.bundle_version} (tools.yaml {r.tools_digest})" for r in results}
    meta = report.Meta(
        tuple(chosen_versions), tuple(chosen_suites), modes, agentdojo_version(), seconds, bundles
    )
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "agentdojo.json", meta, summaries, results)
    report.write_audit(out / "audit.jsonl.gz", results)
    report.write_html(out / "agentdojo.html", meta, summaries, results)
    (out / "summary.md").write_text(report.markdown(summaries), encoding="utf-8")
    (out / "summary.txt").write_text(report.plain(summaries), encoding="utf-8")
    _print_tables(rich, summaries, report)
    for line in report.findings(summaries, results):
        click.echo(f"  {line}")
    click.echo(f"\n{report.WORST_CASE}\n{report.TRACE_NOTE}")
    click.echo(f"\n{len(results)} user tasks, {seconds:.0f} s; report in {out}/agentdojo.html")
    totals = [s for s in summaries if s.suite == "total"]
    executed = sum(
        s.attacks[(g, m, "warded")] for s in totals for g in metrics.GROUPS for m in modes
    )
    calls = sum(
        s.calls[(g, m, "warded", "executed")] for s in totals for g in metrics.GROUPS for m in modes
    )
    errors = sum(s.errors for s in totals)
    if executed or calls or errors:
        raise Failure(
            f"{executed} attacks and {calls} attack calls executed under warded without a human, "
            f"{errors} errors"
        )


def _rich() -> Any:
    try:
        import rich.box
        import rich.console
        import rich.progress
        import rich.table
    except ImportError:
        raise EvaluationError("the report needs rich: pip install 'warded[eval]'") from None
    return rich


def _overrides(items: tuple[str, ...]) -> dict[str, Path]:
    out = {}
    for item in items:
        suite, sep, path = item.partition("=")
        if not sep or suite not in SUITES:
            raise Failure(f"--policies expects SUITE=DIR with SUITE one of {', '.join(SUITES)}")
        out[suite] = Path(path)
    return out


def _print_tables(rich: Any, summaries: Any, report: Any) -> None:
    console = rich.console.Console(width=max(160, rich.console.Console().width))
    for title, head, rows in report.tables(summaries):
        table = rich.table.Table(
            title=title, title_justify="left", box=rich.box.SIMPLE_HEAD, pad_edge=False
        )
        for k, h in enumerate(head):
            table.add_column(h, justify="left" if k < 4 else "right")
        for k, row in enumerate(rows):
            last = k + 1 == len(rows) or rows[k + 1][0] != row[0]
            table.add_row(*row, end_section=last)
        console.print(table)
    console.print("User tasks that need a human under the provenance policies:")
    for line in report.needs_lines(summaries) or ["none"]:
        console.print(f"  {line}", markup=False, highlight=False)


@redteam.command("scenario", short_help="Replay adversarial YAML scenarios against a bundle.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--policies",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Policy directory for every file, in place of their `bundle:` keys.",
)
@click.pass_context
def scenario_command(ctx: click.Context, files: tuple[Path, ...], policies: Path | None) -> None:
    """Replay adversarial calls from YAML scenarios against a bundle through a real gate.

    Exit 0 iff every expectation of every file held, 1 otherwise.
    """
    from warded.evaluation.scenario import Scenario

    passed = failed = 0
    for path in files:
        scenario = Scenario.load(path, policies)
        click.echo(f"{path}: bundle {scenario.bundle_dir}")
        for step in scenario.run():
            if step.ok:
                passed += 1
                click.echo(f"PASS  {step.name}")
            else:
                failed += 1
                click.echo(f"FAIL  {step.name}: expected {step.expected}, got {step.got}")
    click.echo(f"{passed} passed, {failed} failed")
    ctx.exit(1 if failed else 0)
