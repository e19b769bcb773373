"""`warded fmt`: Cedar policies in Cedar's own layout (the formatter cedarpy ships)."""

from __future__ import annotations

import json
from pathlib import Path

import cedarpy
import click

from warded.cli.common import Failure, emit_json, format_option


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
@format_option("text", "json")
@click.pass_context
def fmt(ctx: click.Context, paths: tuple[Path, ...], check: bool, fmt: str) -> None:
    """Format *.cedar files (a folder stands for the *.cedar files in it).

    A file is rewritten only if the formatted text parses to the very same
    policies; comments are kept.
    """
    files = [f for p in paths for f in (sorted(p.rglob("*.cedar")) if p.is_dir() else [p])]
    if not files:
        raise Failure(f"no *.cedar files in {', '.join(map(str, paths))}")
    changed = [f for f in files if _format(f, write=not check)]
    if fmt == "json":
        emit_json({"files": [str(f) for f in files], "unformatted": [str(f) for f in changed]})
    else:
        verb = "would reformat" if check else "reformatted"
        for f in changed:
            click.echo(f"{verb} {f}")
        click.echo(f"{len(changed)} of {len(files)} file{'' if len(files) == 1 else 's'} {verb}")
    ctx.exit(1 if check and changed else 0)


def _format(path: Path, write: bool) -> bool:
    """Whether `path` was (or would be) changed by formatting."""
    text = path.read_text(encoding="utf-8")
    try:
        formatted = cedarpy.format_policies(text)
        same = _tree(formatted) == _tree(text)
    except ValueError as exc:
        raise Failure(f"{path}: cannot format: {exc}") from None
    if not same:
        raise Failure(f"{path}: the formatter would change what the policies mean; left alone")
    if not formatted.endswith("\n"):
        formatted += "\n"
    if formatted == text:
        return False
    if write:
        path.write_text(formatted, encoding="utf-8")
    return True


def _tree(text: str) -> object:
    return json.loads(cedarpy.policies_to_json_str(text))
