"""`validate` and `check`: a bundle loads; one decision and why."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from jsonschema import Draft202012Validator

from warded.cli.common import (
    _DIR,
    _PRINCIPAL,
    Failure,
    _Entity,
    _JsonObject,
    _one_line,
    emit_json,
    format_option,
)
from warded.clock import ManualClock
from warded.errors import ArgumentError, BundleError
from warded.gate import Gate
from warded.model import Decision, Principal, Session
from warded.policy.bundle import PolicyBundle, PolicyInfo
from warded.policy.engine import Engine
from warded.policy.signature import arguments
from warded.tools import ResourceRule, Tool

# -- one decision: `check`, and each case of `test` --------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gate would answer: `code` is "allow" or a refusal code."""

    code: str
    policies: tuple[str, ...]
    errors: tuple[str, ...]
    detail: str | None
    version: str


def _fixed(uid: tuple[str, str]) -> ResourceRule:
    return lambda _args: uid


def _from_arg(entity_type: str, arg: str) -> ResourceRule:
    def rule(args: Mapping[str, Any]) -> tuple[str, str]:
        value = args.get(arg)
        if not isinstance(value, str):
            raise ArgumentError(f"{arg}: the resource id must be a string")
        return entity_type, value

    return rule


def _tool_gate(
    bundle: PolicyBundle,
    name: str,
    parameters: Mapping[str, Any],
    resource: ResourceRule | None,
    now: float,
    executor: Callable[..., Any] | None = None,
) -> tuple[Gate, Tool]:
    """A gate over `bundle` with one tool registered and its clock stopped at `now`."""
    gate = Gate(bundle, clock=ManualClock(now))
    tool = gate.register(name, parameters, executor or (lambda **_: None), resource=resource)
    return gate, tool


def decide(
    gate: Gate, tool: Tool, principal: Principal, args: Mapping[str, Any], session: Session
) -> Verdict:
    """`gate.decide`, with the determining policies and engine errors behind a refusal."""
    answer = gate.decide(principal, tool.name, args, session)
    if isinstance(answer, Decision):
        return Verdict("allow", answer.policies, answer.errors, None, answer.bundle_version)
    seen = _engine_decision(gate, tool, principal, args, session)
    policies: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    if answer.code == "not_permitted":
        policies = (answer.policy,) if answer.policy else ()
        errors = seen.errors if seen else ()
    elif seen is not None and seen.allowed:  # allowed, then held by an obligation
        policies = seen.policies
    return Verdict(answer.code, policies, errors, answer.detail, gate.version)


def _engine_decision(
    gate: Gate, tool: Tool, principal: Principal, args: Mapping[str, Any], session: Session
) -> Decision | None:
    """The engine's own answer behind a refusal; None if there is none."""
    try:
        return gate.evaluate(principal, tool.name, args, session)
    except Exception:  # only a diagnosis: the verdict itself comes from gate.decide
        return None


def _obligations(info: PolicyInfo) -> list[str]:
    out = [f"needs approval from {info.approval}"] if info.approval else []
    out += [f"rate limit {info.rate}"] if info.rate else []
    out += [f"budget {info.budget}"] if info.budget else []
    return out + ([f"results redacted for {', '.join(info.redact)}"] if info.redact else [])


def _described(bundle: PolicyBundle, pid: str) -> str:
    info = bundle.policies.get(pid)
    if info is None:
        return pid
    text = info.description or f"(no @description; {info.file}:{info.line})"
    return f"{pid}: {text}" + "".join(f" ({o})" for o in _obligations(info))


@click.command()
@_DIR
@format_option("text", "json")
def validate(directory: Path, fmt: str) -> None:
    """Load and validate a policy bundle, as a gate would.

    Each problem is printed as `error: file:line: message`; exit 1 if there is any.
    With `--format json` the problems are printed on stdout as data.
    """
    try:
        bundle = PolicyBundle.from_directory(directory)
    except BundleError as exc:
        if fmt != "json":
            raise
        found = [{"file": p.file, "line": p.line, "message": p.message} for p in exc.problems]
        emit_json({"ok": False, "problems": found})
        raise click.exceptions.Exit(1) from None
    n, t = len(bundle.policies), len(bundle.actions)
    if fmt == "json":
        emit_json({"ok": True, "policies": n, "tools": t, "version": bundle.version})
        return
    counts = f"{n} polic{'y' if n == 1 else 'ies'}, {t} tool{'' if t == 1 else 's'}"
    click.echo(f"ok: {counts}, version {bundle.version}")


@click.command()
@_DIR
@_PRINCIPAL
@click.option("--tool", "-t", required=True, help="The tool (a Cedar action of the same name).")
@click.option("--args", type=_JsonObject(), default="{}", help="The arguments, a JSON object.")
@click.option("--label", "labels", multiple=True, help="A session label, e.g. untrusted.")
@click.option(
    "--resource",
    type=_Entity(),
    default=None,
    help='What the call touches, e.g. Payee::"GB33…"; default Tool::"<tool>".',
)
@click.option("--now", type=float, default=None, help="The time in seconds since the epoch.")
@format_option("text", "json")
@click.pass_context
def check(
    ctx: click.Context,
    directory: Path,
    principal: tuple[str, str],
    tool: str,
    args: dict[str, Any],
    labels: tuple[str, ...],
    resource: tuple[str, str] | None,
    now: float | None,
    fmt: str,
) -> None:
    """Decide one call without running anything, and say why.

    \b
    The arguments are typed as the Cedar schema declares them for the tool's
    action (a `decimal` amount may be written 1200 or 1200.0), as a gate whose
    tool has the matching JSON Schema would.

    Exit 0 if the call would be allowed, 2 if it would be refused, 1 if the
    input is wrong (an unknown agent or tool, a missing or mistyped argument,
    a resource of the wrong type): a mistake is never reported as a refusal.
    """
    bundle = PolicyBundle.from_directory(directory)
    who = Principal(*principal)
    known_call(bundle, who, tool)
    rule = _fixed(resource) if resource else None
    when = time.time() if now is None else now
    parameters = arguments(bundle, tool)
    wrong = sorted(Draft202012Validator(parameters).iter_errors(args), key=lambda e: e.json_path)
    if wrong and Engine(bundle).visible(who, tool):  # a hidden tool is unknown_tool first
        raise Failure(*(f"arguments for {tool}: {e.json_path}: {e.message}" for e in wrong))
    gate, t = _tool_gate(bundle, tool, parameters, rule, when)
    session = Session("warded-check")
    if labels:
        gate.label(session, labels)
    verdict = decide(gate, t, who, args, session)
    if verdict.code == "invalid_arguments":
        raise Failure(f"arguments for {tool}: {verdict.detail or 'invalid'}")
    unbuilt = [e for e in verdict.errors if e.startswith(_UNBUILT)]
    if unbuilt:
        hint = "" if resource else f' (give --resource; the default is Tool::"{tool}")'
        raise Failure(*(e[len(_UNBUILT) :] + hint for e in unbuilt))
    if fmt == "json":
        emit_json(_verdict_json(bundle, verdict))
        ctx.exit(0 if verdict.code == "allow" else 2)
    click.echo("allow" if verdict.code == "allow" else f"refused: {verdict.code}")
    for pid in verdict.policies:
        click.echo(f"  policy {_described(bundle, pid)}")
    if verdict.code == "not_permitted" and not verdict.policies and not verdict.errors:
        click.echo("  no policy permits this call (default deny)")
    for error in verdict.errors:
        click.echo(f"  engine error: {_one_line(error)}")
    if verdict.detail:
        click.echo(f"  detail: {verdict.detail}")
    if verdict.code == "unknown_tool":
        click.echo("  no policy could ever permit this principal to call it")
    click.echo(f"bundle {verdict.version}")
    ctx.exit(0 if verdict.code == "allow" else 2)


_UNBUILT = "failed to build request: "


def known_call(bundle: PolicyBundle, principal: Principal, tool: str) -> None:
    """Fail unless the bundle declares `tool` and knows `principal` (`known_principal`)."""
    problems = []
    if not known_principal(bundle, principal):
        ids = [f'{t}::"{i}"' for t, i in bundle.ancestors if t == principal.type]
        problems.append(f"{principal} is not an entity of the bundle" + _maybe(str(principal), ids))
    if tool not in bundle.actions:
        problems.append(f"the bundle has no tool {tool!r}" + _maybe(tool, list(bundle.actions)))
    if problems:
        raise Failure(*problems)


def known_principal(bundle: PolicyBundle, principal: Principal) -> bool:
    """Whether the bundle lists `principal`, or lists no entity of its type at all
    (then its agents are not enumerated, and any id may be meant)."""
    uid = (principal.type, principal.id)
    return uid in bundle.ancestors or all(t != principal.type for t, _ in bundle.ancestors)


def _maybe(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _verdict_json(bundle: PolicyBundle, verdict: Verdict) -> dict[str, Any]:
    def policy(pid: str) -> dict[str, Any]:
        info = bundle.policies.get(pid)
        return {
            "id": pid,
            "description": info.description if info else None,
            "obligations": _obligations(info) if info else [],
        }

    return {
        "decision": "allow" if verdict.code == "allow" else "refused",
        "code": verdict.code,
        "policies": [policy(p) for p in verdict.policies],
        "errors": list(verdict.errors),
        "detail": verdict.detail,
        "bundle_version": verdict.version,
    }
