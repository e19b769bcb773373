"""`warded explain`: the governance document, each agent's boundary in plain language."""

from __future__ import annotations

from pathlib import Path

import click

from warded.cli.common import _DIR, _Entity, format_option
from warded.governance.document import as_json, document
from warded.governance.render import html_page, markdown
from warded.model import Principal
from warded.policy.bundle import PolicyBundle


@click.command()
@_DIR
@click.option(
    "--principal",
    "-p",
    "principals",
    multiple=True,
    type=_Entity("Agent"),
    help='Only this agent (repeatable): Agent::"billing-bot", or billing-bot for short.',
)
@format_option("markdown", "html", "json")
@click.option(
    "--now", type=float, default=None, help="The document's date, in seconds since the epoch."
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write it here.")
def explain(
    directory: Path,
    principals: tuple[tuple[str, str], ...],
    fmt: str,
    now: float | None,
    out: Path | None,
) -> None:
    """Each agent's boundary, from the policies: the governance document.

    For every agent (or the ones named): each tool it may use and under which
    conditions, what is forbidden and when, which calls need approval and who
    can approve them, and its rate and budget limits (a limit shared by
    several tools is listed once, with all of them). Every statement is
    derived from the parsed policies and entities; a condition that cannot
    be put into words is shown as Cedar. The document carries the bundle
    version and its date.
    """
    bundle = PolicyBundle.from_directory(directory)
    chosen = [Principal(*p) for p in principals] or None
    doc = document(bundle, chosen, now)
    text = {"json": lambda: as_json(doc) + "\n", "html": lambda: html_page(doc)}.get(
        fmt, lambda: markdown(doc)
    )()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"ok: written to {out}")
