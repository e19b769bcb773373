"""`warded policy push DIR --db URL`: make a bundle live for every node of a deployment."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from warded.cli.common import _DIR, _Group
from warded.cli.stores import postgres_url
from warded.policy.source import DirectorySource


@click.group(cls=_Group)
def policy() -> None:
    """Policy bundles shared by several nodes through PostgreSQL."""


@policy.command()
@_DIR
@click.option("--db", "target", required=True, metavar="URL", help="The deployment's database.")
@click.option("--by", default=None, help="Who pushes (recorded; default: the login name).")
def push(directory: Path, target: str, by: str | None) -> None:
    """Validate the bundle in DIR and make it live for every node.

    Nodes swap to it when notified (or at their next periodic check); from the
    moment this returns, no node executes a call decided on the old bundle.
    Open approvals bound to another bundle are voided. A bundle that does not
    load is refused, and the live one stays.
    """
    from warded.stores.live import push as make_live
    from warded.stores.postgres import PostgresStore

    files = DirectorySource(directory).read()
    store = PostgresStore(postgres_url(target, "policy push"))
    try:
        version, voided = make_live(store, files, by=by or getpass.getuser())
    finally:
        store.close()
    click.echo(f"ok: bundle {version} is live; {voided} open approvals voided")
