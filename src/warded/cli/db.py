"""`warded db migrate URL`: create or upgrade the warded schema in a PostgreSQL database."""

from __future__ import annotations

import click

from warded.cli.common import _Group
from warded.cli.stores import TARGET, postgres_url


@click.group(cls=_Group)
def db() -> None:
    """Manage the warded schema in a PostgreSQL database."""


@db.command()
@TARGET
def migrate(target: str) -> None:
    """Apply the schema migrations this warded has and the database lacks.

    Refused if the database's schema is newer than this warded's. Safe to run
    from several nodes at once: migrations take a lock and run in one
    transaction. (A SQLite file is brought up to date when a store opens it.)
    """
    from warded.stores.postgres import migrate as run

    found, now = run(postgres_url(target, "db migrate"))
    if found == now:
        click.echo(f"ok: schema already at version {now}")
    else:
        click.echo(f"ok: schema migrated from version {found} to {now}")
