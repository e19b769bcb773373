"""`warded diff OLD_DIR NEW_DIR`: what a new bundle changes for each agent."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from warded.cli.common import emit_json, format_option
from warded.governance.diff import changes, flips
from warded.policy.bundle import PolicyBundle

_BUNDLE = click.Path(exists=True, file_okay=False, path_type=Path)
EXAMPLES = 3  # per agent, tool and kind of flip in the text output


@click.command()
@click.argument("old_dir", type=_BUNDLE, metavar="OLD_DIR")
@click.argument("new_dir", type=_BUNDLE, metavar="NEW_DIR")
@format_option("text", "json")
@click.pass_context
def diff(ctx: click.Context, old_dir: Path, new_dir: Path, fmt: str) -> None:
    """What changes for each agent between two bundles.

    \b
    Permissions gained and lost, from the policies: tools, the permits and
    forbids that apply, their conditions, approvals and limits. Then example
    requests whose answer flips, found by deciding both bundles on requests
    built from the policies' own constants and boundaries (each number a
    policy compares with and one either side, each string, label, entity and
    scanner finding it names).

    Exit 0 whether or not anything changed (the output says); 1 on error.
    """
    old, new = PolicyBundle.from_directory(old_dir), PolicyBundle.from_directory(new_dir)
    stated = changes(old, new)
    tried, found = flips(old, new)
    if fmt == "json":
        emit_json(
            {
                "old_version": old.version,
                "new_version": new.version,
                "changes": stated,
                "requests_tried": tried,
                "flips": [f.to_json() for f in found],
            }
        )
        return
    click.echo(f"bundle {old.version} → {new.version}")
    if not stated and not found:
        click.echo("no permission changes; no request tried decides differently")
    per_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in stated:
        per_agent[s["principal"]].append(s)
    for principal, statements in per_agent.items():
        click.echo(f"\n{principal}")
        for s in statements:
            click.echo(f"  {s['kind']:<8} {s['tool']}: {s['text']}")
            if "before" in s:
                click.echo(f"           before: {s['before']}")
                click.echo(f"           after:  {s['after']}")
    click.echo(f"\n{len(found)} of {tried} generated requests decide differently")
    groups: dict[tuple[str, str, str, str], list[Any]] = defaultdict(list)
    for example in found:
        groups[(example.principal, example.tool, example.before, example.after)].append(example)
    for (principal, tool, before, after), some in groups.items():
        click.echo(f"  {principal} {tool}: {before} → {after} ({len(some)} requests), e.g.")
        for f in some[:EXAMPLES]:
            labels = f" labels {list(f.labels)}" if f.labels else ""
            labels += f" scanners found {', '.join(f.found)}" if f.found else ""
            resource = f.to_json()["resource"]
            click.echo(f"    args {json.dumps(dict(f.args))} resource {resource}{labels}")
