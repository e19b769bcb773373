"""`warded audit in-doubt DB`: calls allowed to run whose outcome was never recorded.

After a crash (kill -9, power loss, a lost database connection between
execution and the outcome), a call whose decision was committed may or may not
have run: its decision record has no outcome record. Those calls are what an
operator must check by hand. On a deployment that is still running, a call in
flight looks the same for a moment; `--older-than` leaves those out.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from warded.cli.audit import DB_ARG, open_store


def in_doubt(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The enforced allow decisions with no outcome for their call, oldest first."""
    finished = {b.get("call") for b in bodies if b.get("kind") == "outcome"}
    return [
        b
        for b in bodies
        if b.get("kind") == "decision"
        and b.get("decision") == "allow"
        and b.get("mode") == "enforce"
        and b.get("call") not in finished
    ]


@click.command("in-doubt")
@DB_ARG
@click.option("--json", "as_json", is_flag=True, help="One JSON object per call.")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="Only calls decided at least this long ago (leave out calls still in flight).",
)
def audit_in_doubt(db: Path | str, as_json: bool, older_than: float) -> None:
    """Calls that were allowed to run and have no recorded outcome (exit 0 either way)."""
    with open_store(db) as store:
        bodies = [r.body for r in store.records()]
    cutoff = (time.time() - older_than) * 1_000_000
    found = [b for b in in_doubt(bodies) if b.get("time_us", 0) <= cutoff]
    for b in found:
        if as_json:
            keys = ("seq", "call", "time_us", "principal", "tool", "args_digest", "bundle_version")
            click.echo(json.dumps({k: b.get(k) for k in keys}, sort_keys=True))
        else:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b.get("time_us", 0) / 1e6))
            click.echo(
                f"#{b.get('seq'):<6} {when}  call {b.get('call')}  {b.get('principal')}  "
                f"{b.get('tool')}  args {str(b.get('args_digest'))[:16]}  "
                f"bundle {str(b.get('bundle_version'))[:12]}"
            )
    if not as_json:
        click.echo(f"{len(found)} calls in doubt", err=True)
