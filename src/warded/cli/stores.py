"""Opening an existing store named on the command line: a SQLite file or a PostgreSQL URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from warded.cli.audit import open_store as open_sqlite
from warded.cli.common import Failure
from warded.store import Store
from warded.stores import is_url

TARGET = click.argument("target", metavar="DB")


@contextmanager
def existing_store(target: str) -> Iterator[Store]:
    """The store at `target`; never creates one for a mistyped path or an unmigrated database."""
    if not is_url(target):
        with open_sqlite(Path(target)) as sqlite:
            yield sqlite
        return
    from warded.stores.postgres import PostgresStore

    store = PostgresStore(target)
    try:
        yield store
    finally:
        store.close()


def postgres_url(target: str, what: str) -> str:
    """`target` if it is a PostgreSQL URL; a clear error otherwise."""
    if not is_url(target):
        raise Failure(f"{what} needs a PostgreSQL URL (postgresql://…), not {target!r}")
    return target
