"""The `warded` command line.

    warded validate DIR                     a bundle loads, or every problem as file:line
    warded fmt [--check] PATH...            format Cedar policies with Cedar's formatter
    warded check DIR -p AGENT -t TOOL ...   one decision and why (a dry run)
    warded explain DIR [-p AGENT]           each agent's boundary: the governance document
    warded diff OLD_DIR NEW_DIR             what a new bundle changes, per agent
    warded replay DB --bundle DIR           recorded decisions re-decided by a candidate bundle
    warded test CASES...                    policy test cases (tests/cases/*.yaml)
    warded audit verify|tail|export|checkpoint|shadow DB
    warded audit in-doubt DB|URL            allowed calls with no recorded outcome
    warded approvals list|show|approve|deny DB ...
    warded db migrate URL                   create or upgrade the schema in PostgreSQL
    warded policy push DIR --db URL         make a bundle live for every node
    warded mcp serve|schema|pin|token ...   the MCP gateway
    warded serve run|account|openapi CONFIG   the HTTP service

Exit codes: 0 success (for `check`: allowed; for `test`: every case passed);
1 an error, a usage error, a failed case, or (for `replay`) a widening; 2
`check` decided to refuse. A mistake in the input is an error, never a
refusal. An error is one `error: …` line per problem on stderr; `--debug`
adds the traceback of an unexpected one.
"""

from __future__ import annotations

import sys
import traceback

import click

from warded.cli.approvals import approvals
from warded.cli.audit import audit
from warded.cli.cases import run_case_files
from warded.cli.common import _Group, internal_error
from warded.cli.db import db
from warded.cli.decide import check, validate
from warded.cli.diff import diff
from warded.cli.explain import explain
from warded.cli.fmt import fmt
from warded.cli.indoubt import audit_in_doubt
from warded.cli.mcp import mcp
from warded.cli.policy import policy
from warded.cli.redteam import redteam
from warded.cli.replay import replay, shadow
from warded.cli.serve import serve

audit.add_command(shadow)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="warded")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
def cli(debug: bool) -> None:
    """warded: execution authority for AI agents."""


for command in (
    validate,
    fmt,
    check,
    explain,
    diff,
    replay,
    run_case_files,
    audit,
    approvals,
    db,
    policy,
    redteam,
    mcp,
    serve,
):
    cli.add_command(command)
audit.add_command(audit_in_doubt)


def main() -> None:
    """The console script; even a bug outside a command ends in one `error:` line."""
    try:
        cli.main(prog_name="warded")
    except Exception as exc:
        if "--debug" in sys.argv[1:]:
            traceback.print_exc()
        click.echo(f"error: {internal_error(exc)}", err=True)
        sys.exit(1)
