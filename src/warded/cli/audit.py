"""`warded audit`: verify, tail, export and checkpoint a SQLite audit log; keys for
signed checkpoints."""

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
from warded.audit.signing import generate_key, sign, verify_signed
from warded.audit.state import verify_state
from warded.cli.common import Failure, _Group, _one_line, emit_json, format_option
from warded.links import printable
from warded.store import Store
from warded.stores import is_url
from warded.stores.sqlite import SQLiteStore

# -- the audit log ------------------------------------------------------


class _Target(click.ParamType[Path | str]):
    """A SQLite file (a Path) or a PostgreSQL URL (kept as the string it is)."""

    name = "db"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value if isinstance(value, Path) or is_url(value) else Path(value)


DB_ARG = click.argument("db", type=_Target(), metavar="DB")
_OUT = click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout."
)


@click.group(cls=_Group)
def audit() -> None:
    """Verify, read and export an audit log (a SQLite file or a PostgreSQL URL)."""


@contextmanager
def open_store(path: Path | str) -> Iterator[Store]:
    """An existing audit log: a SQLite file (never created for a mistyped path) or a
    migrated PostgreSQL database (a `postgresql://` URL)."""
    if isinstance(path, str):
        from warded.stores.postgres import PostgresStore

        shared = PostgresStore(path)
        try:
            yield shared
        finally:
            shared.close()
        return
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
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Require the checkpoint to be signed by this key (`warded audit keygen`).",
)
@format_option("text", "json")
def audit_verify(db: Path, checkpoint: Path | None, public_key: Path | None, fmt: str) -> None:
    """Walk the hash chain, then recompute approvals, limit counters and session labels
    from it and compare them with the store's tables; exit 1 naming what does not
    verify (the first bad record, every disagreeing row by id)."""
    cp = _checkpoint(checkpoint, public_key)
    with open_store(db) as store:
        result = verify(store.records(), cp)
        problems = verify_state(store.records(), store) if result.ok else []
    if fmt == "json":
        emit_json(
            {
                "ok": result.ok and not problems,
                "records": result.size,
                "head": result.head,
                "first_bad": result.first_bad,
                "reason": result.reason,
                "checkpoint": None if cp is None else cp.to_json(),
                "state": [{"what": p.what, "id": p.id, "reason": p.reason} for p in problems],
            }
        )
        if not result.ok or problems:
            raise click.exceptions.Exit(1)
        return
    if not result.ok:
        raise Failure(f"record {result.first_bad}: {result.reason}")
    if problems:
        raise Failure(*(printable(f"{p} (not accounted for by the chain)") for p in problems))
    against = f", matches checkpoint of {cp.size} records" if cp else ""
    signed = " (signature verified)" if public_key else ""
    click.echo(
        f"ok: {result.size} records, head {result.head}{against}{signed}; "
        "approvals, counters and session labels agree with the chain"
    )


def _checkpoint(path: Path | None, public_key: Path | None) -> Checkpoint | None:
    if path is None:
        if public_key is not None:
            raise Failure("--public-key needs --checkpoint")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if public_key is not None:
            return verify_signed(data, public_key)
        return Checkpoint.from_json(data)
    except (ValueError, AttributeError, TypeError) as exc:
        raise Failure(f"checkpoint {path}: {exc}") from None


@audit.command()
@DB_ARG
@click.option("-n", "count", type=click.IntRange(min=0), default=20, show_default=True)
@format_option("text", "json")
def tail(db: Path, count: int, fmt: str) -> None:
    """The last records of the log, oldest first (not verified; see `verify`).

    Text output escapes control and formatting characters, so nothing a caller
    put in a tool name or an argument can forge or hide a line.
    """
    with open_store(db) as store:
        records = list(store.records(max(0, store.checkpoint().size - count))) if count else []
    for record in records:
        click.echo(_jsonl(record) if fmt == "json" else _summary(record))


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
    who, tool, what, why = (printable(str(x)) for x in (who, tool, what, why))
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
@click.option(
    "--sign",
    "key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign it with this Ed25519 private key (`warded audit keygen`).",
)
def audit_checkpoint(db: Path, out: Path | None, key: Path | None) -> None:
    """The log's size and head hash (JSON), for `verify --checkpoint` to catch truncation
    later; signed, a third party can check it with the public key."""
    with open_store(db) as store:
        cp = store.checkpoint()
    data = cp.to_json() if key is None else sign(cp, key)
    _emit(json.dumps(data, sort_keys=True) + "\n", out)


@audit.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), metavar="KEY")
def keygen(path: Path) -> None:
    """Create an Ed25519 key pair for signing checkpoints: KEY (private, mode 0600)
    and KEY.pub; never overwrites a file."""
    try:
        pub = generate_key(path)
    except FileExistsError as exc:
        raise Failure(f"{exc.filename} exists; choose another path") from None
    click.echo(f"ok: private key {path}, public key {pub}")


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
