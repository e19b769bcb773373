"""`warded audit`: verify, tail, export and checkpoint a SQLite audit log."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import click

from warded.audit.record import AuditRecord, Checkpoint, verify
from warded.cli.common import Failure, _Group, _one_line
from warded.stores.sqlite import SQLiteStore

# -- the audit log ------------------------------------------------------


DB_ARG = click.argument("db", type=click.Path(path_type=Path), metavar="DB")
_OUT = click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout."
)


@click.group(cls=_Group)
def audit() -> None:
    """Verify, read and export a SQLite audit log."""


@contextmanager
def open_store(path: Path) -> Iterator[SQLiteStore]:
    """An existing audit log; never creates one for a mistyped path."""
    if not path.is_file():
        raise Failure(f"no audit log at {path}")
    try:
        with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit'").fetchone()
    except sqlite3.DatabaseError:
        found = None
    if found is None:
        raise Failure(f"{path} is not a warded audit log")
    store = SQLiteStore(path)
    try:
        yield store
    finally:
        store.close()


def _jsonl(record: AuditRecord) -> str:
    try:
        body = record.to_json()
    except ValueError:
        raise Failure(f"record {record.seq} is not JSON; see `warded audit verify`") from None
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


@audit.command("verify")
@DB_ARG
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file from `warded audit checkpoint`: also detect truncation.",
)
def audit_verify(db: Path, checkpoint: Path | None) -> None:
    """Walk the hash chain; exit 1 naming the first record that does not verify."""
    cp = None
    if checkpoint is not None:
        try:
            cp = Checkpoint.from_json(json.loads(checkpoint.read_text(encoding="utf-8")))
        except (ValueError, AttributeError) as exc:
            raise Failure(f"checkpoint {checkpoint}: {exc}") from None
    with open_store(db) as store:
        result = verify(store.records(), cp)
    if not result.ok:
        raise Failure(f"record {result.first_bad}: {result.reason}")
    against = f", matches checkpoint of {cp.size} records" if cp else ""
    click.echo(f"ok: {result.size} records, head {result.head}{against}")


@audit.command()
@DB_ARG
@click.option("-n", "count", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record.")
def tail(db: Path, count: int, as_json: bool) -> None:
    """The last records of the log, oldest first (not verified; see `verify`)."""
    with open_store(db) as store:
        records = list(store.records(max(0, store.checkpoint().size - count))) if count else []
    for record in records:
        click.echo(_jsonl(record) if as_json else _summary(record))


def _summary(record: AuditRecord) -> str:
    try:
        b: dict[str, Any] = record.body
        stamp = b["time_us"] / 1e6 if "time_us" in b else b["time"]
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
        if b["kind"] == "decision":
            what = f"{b['decision']}" + (f" ({b['code']})" if b.get("code") else "")
            why = ", ".join(b["policies"]) or _one_line(", ".join(b["reasons"]))[:80]
        elif b["kind"] == "outcome":
            what, why = f"outcome {b['outcome']}", ""
        else:
            what, why = "event", json.dumps(b.get("detail"), sort_keys=True)
        who, tool = b.get("principal") or "", b.get("tool") or ""
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError):
        return f"#{record.seq:<5} (unreadable record; see `warded audit verify`)"
    return f"#{record.seq:<5} {when}  {who:<24} {tool:<18} {what:<28} {why}".rstrip()


@audit.command()
@DB_ARG
@_OUT
def export(db: Path, out: Path | None) -> None:
    """Every record as a JSON line: its body plus its hash."""
    with open_store(db) as store:
        lines = [_jsonl(r) + "\n" for r in store.records()]
    _emit("".join(lines), out)
    if out is not None:
        click.echo(f"ok: {len(lines)} records written to {out}")


@audit.command("checkpoint")
@DB_ARG
@_OUT
def audit_checkpoint(db: Path, out: Path | None) -> None:
    """The log's size and head hash, for `verify --checkpoint` to catch truncation later."""
    with open_store(db) as store:
        cp = store.checkpoint()
    _emit(json.dumps(cp.to_json(), sort_keys=True) + "\n", out)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
