"""The `warded` command line.

    warded validate DIR                     a bundle loads, or every problem as file:line
    warded check DIR -p AGENT -t TOOL ...   one decision and why (a dry run)
    warded explain DIR -p AGENT             an agent's boundary in plain language
    warded test [DIR] CASES.yaml...         policy test cases (tests/cases/*.yaml)
    warded audit verify|tail|export|checkpoint DB
    warded approvals list|show|approve|deny DB ...
    warded mcp serve|schema|pin|token ...   the MCP gateway

Exit codes: 0 success (for `check`: allowed; for `test`: every case passed);
1 an error, a usage error or a failed case; 2 `check` was refused. An error is
one `error: …` line per problem on stderr, never a traceback.
"""

from __future__ import annotations

import sys

import click

from warded.cli.approvals import approvals
from warded.cli.audit import audit
from warded.cli.cases import run_case_files
from warded.cli.common import _Group, _one_line
from warded.cli.decide import check, explain, validate
from warded.cli.mcp import mcp
from warded.cli.redteam import redteam


@click.group(cls=_Group)
@click.version_option(package_name="warded")
def cli() -> None:
    """warded: execution authority for AI agents."""


for command in (validate, check, explain, run_case_files, audit, approvals, redteam, mcp):
    cli.add_command(command)


def main() -> None:
    """The console script; even a bug ends in one `error:` line, not a traceback."""
    try:
        cli.main(prog_name="warded")
    except Exception as exc:
        click.echo(f"error: internal error: {type(exc).__name__}: {_one_line(exc)}", err=True)
        sys.exit(1)
