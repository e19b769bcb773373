"""Store backends: SQLite (the embedded default) and PostgreSQL (several nodes).

`open_store(target)` opens either: a `postgresql://` (or `postgres://`) URL
gives a `PostgresStore`, anything else is the path of a SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from warded.store import Store

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(target: str | Path) -> bool:
    """Whether `target` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def open_store(target: str | Path) -> Store:
    """The store at a PostgreSQL URL or a SQLite file path (created if missing)."""
    if is_url(target):
        from warded.stores.postgres import PostgresStore

        return PostgresStore(str(target))
    from warded.stores.sqlite import SQLiteStore

    return SQLiteStore(target)
