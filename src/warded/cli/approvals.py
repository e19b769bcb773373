"""`warded approvals`: see pending approvals and decide them.

Approvers are the bundle's `Approver` entities; their `ApproverGroup` parents
are the groups that `@approval("…")` names. Approving never runs anything: the
agent's identical retry (or `Gate.run_approved`) runs the call exactly once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from warded.cli.audit import DB_ARG, open_store
from warded.cli.common import Failure, _Group, format_option
from warded.clock import ManualClock, SystemClock
from warded.errors import ApprovalError
from warded.links import for_approvers, printable, source_words
from warded.obligations.approvals import STATUSES, Approval
from warded.obligations.desk import ApprovalDesk, approver_from_bundle
from warded.policy.bundle import PolicyBundle
from warded.store import Store

_NOW = click.option(
    "--now", type=float, default=None, help="The time in seconds since the epoch (default: now)."
)


@click.group(cls=_Group)
def approvals() -> None:
    """List, show, approve and deny approvals in a SQLite store."""


def _desk(store: Any, now: float | None) -> ApprovalDesk:
    return ApprovalDesk(store, SystemClock() if now is None else ManualClock(now))


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _line(a: Approval) -> str:
    who, tool, policy = (printable(x) for x in (a.principal, a.tool, a.policy))
    return (
        f"{a.id}  {a.status:<9} {who:<24} {tool:<16} group {a.group:<10} "
        f"expires {_when(a.expires)}  policy {policy}"
    )


@approvals.command("list")
@DB_ARG
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@format_option("text", "json")
@_NOW
def list_approvals(db: Path, status: str | None, fmt: str, now: float | None) -> None:
    """Approvals, oldest first; open ones past their expiry show as expired. Arguments
    are shown as approvers see them: sensitive values and scanner findings masked."""
    with open_store(db) as store:
        found = _desk(store, now).approvals(status)  # type: ignore[arg-type]
    for a in found:
        click.echo(json.dumps(a.to_json(), sort_keys=True) if fmt == "json" else _line(a))
    if fmt == "text":
        click.echo(f"{len(found)} approval{'' if len(found) == 1 else 's'}")


@approvals.command()
@DB_ARG
@click.argument("approval_id")
@_NOW
def show(db: Path, approval_id: str, now: float | None) -> None:
    """One approval with the arguments it would let run (sensitive values masked), and
    what the policy saw of them: each argument's provenance and the links inside it."""
    with open_store(db) as store:
        a = _get(_desk(store, now), approval_id)
        held = _held(store, a.id)
    click.echo(_line(a))
    session = printable(a.session)
    click.echo(f"  session {session}, bundle {a.bundle_version}, created {_when(a.created)}")
    click.echo(f"  resource {a.resource['type']}::{json.dumps(a.resource['id'])}")
    click.echo(f"  arguments (digest {a.args_digest[:16]}…):")
    for line in json.dumps(json.loads(a.args), indent=2, sort_keys=True).splitlines():
        click.echo(f"    {line}")
    for line in _seen(held):
        click.echo(f"  {line}")
    if a.decided_by:
        reason = f": {printable(a.reason)}" if a.reason else ""
        click.echo(f"  {a.status} by {printable(a.decided_by)}{reason}")


def _held(store: Store, approval_id: str) -> dict[str, Any]:
    """The decision record that held the call for `approval_id` ({} if not in the log)."""
    for record in store.records():
        body = record.body
        detail = body.get("detail") or {}
        if body.get("code") == "approval_required" and detail.get("approval") == approval_id:
            return body
    return {}


def _seen(held: dict[str, Any]) -> list[str]:
    """What the policy saw of the held call's arguments, as the approvals page shows it:
    each argument's provenance, and each one's links with their own sources."""
    context = (held.get("request") or {}).get("context") or {}
    out = []
    provenance = context.get("provenance")
    if isinstance(provenance, dict):
        for arg, tags in sorted(provenance.items()):
            out.append(f"provenance of {printable(str(arg))}: {_sources(tags)}")
    for arg in for_approvers(context.get("links"), (held.get("detail") or {}).get("links_found")):
        name, n = printable(arg.arg), arg.count
        shared = f"; all share: {_sources(arg.provenance, 'no source common to all')}" if n else ""
        out.append(f"links in {name}: {n}{shared}")
        if arg.items is None:
            out.append("  (the links themselves were not recorded for this call)" if n else "")
            continue
        for x in arg.items:
            flag = "  FLAGGED" if x.flagged else ""
            out.append(f"  {x.shown.text}{flag}  found in: {_sources(x.provenance)}")
            if x.shown.non_ascii:
                unicode, ascii_ = x.shown.unicode or x.shown.host, x.shown.ascii or x.shown.host
                out.append(f"    host {unicode} is {ascii_} (not plain ASCII: check each letter)")
        if arg.unlisted:
            out.append(f"  and {arg.unlisted} more not listed")
    return [line for line in out if line]


def _sources(tags: object, empty: str = "no remembered source (the agent wrote it)") -> str:
    if not isinstance(tags, list | tuple):
        return printable(str(tags))
    words = [printable(source_words(str(t))) for t in tags]
    return ", ".join(words) if words else empty


def _get(desk: ApprovalDesk, approval_id: str) -> Approval:
    try:
        return desk.get(approval_id)
    except ApprovalError as exc:
        raise Failure(str(exc)) from None


def _decide_command(verb: str) -> click.Command:
    @click.command(
        verb, help=f"{verb.capitalize()} a pending approval as an approver of the bundle."
    )
    @DB_ARG
    @click.argument("approval_id")
    @click.option("--as", "who", required=True, help="Your id: an Approver entity of the bundle.")
    @click.option(
        "--policies",
        required=True,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="The policy directory whose entities say which groups you approve for.",
    )
    @click.option("--reason", default=None, help="Why; kept in the audit log.")
    @_NOW
    def command(
        db: Path, approval_id: str, who: str, policies: Path, reason: str | None, now: float | None
    ) -> None:
        bundle = PolicyBundle.from_directory(policies)
        try:
            approver = approver_from_bundle(bundle, who)
            with open_store(db) as store:
                desk = _desk(store, now)
                decided = (desk.approve if verb == "approve" else desk.deny)(
                    approval_id, approver, reason
                )
        except ApprovalError as exc:
            raise Failure(f"{exc} [{exc.problem}]") from None
        click.echo(f"{decided.status}: {_line(decided)}")

    return command


for _verb in ("approve", "deny"):
    approvals.add_command(_decide_command(_verb))
