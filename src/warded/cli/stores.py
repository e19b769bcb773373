"""A PostgreSQL URL named on the command line."""

from __future__ import annotations

import click

from warded.cli.common import Failure
from warded.stores import is_url

TARGET = click.argument("target", metavar="URL")


def postgres_url(target: str, what: str) -> str:
    """`target` if it is a PostgreSQL URL; a clear error otherwise."""
    if not is_url(target):
        raise Failure(f"{what} needs a PostgreSQL URL (postgresql://…), not {target!r}")
    return target
