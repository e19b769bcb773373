"""`validate`, `check` and `explain`: a bundle, one decision, an agent's boundary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from warded.cli.common import _DIR, _PRINCIPAL, _Entity, _JsonObject, _one_line
from warded.clock import ManualClock
from warded.errors import ArgumentError
from warded.gate import Gate
from warded.model import Decision, Principal, Session
from warded.policy.bundle import PolicyBundle, PolicyInfo
from warded.policy.engine import Engine
from warded.policy.slicing import slice_tree
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


def permissive_schema(args: Mapping[str, Any]) -> dict[str, Any]:
    """Any object; numbers written with a decimal point are declared `number`, so
    Cedar sees a decimal even where canonical JSON writes 1200.0 as 1200."""
    return {"type": "object", **_numbers(dict(args))}


def _numbers(value: Any) -> dict[str, Any]:
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, dict):
        props = {k: s for k, v in value.items() if (s := _numbers(v))}
        return {"properties": props} if props else {}
    if isinstance(value, list):
        items = next((s for v in value if (s := _numbers(v))), None)
        return {"items": items} if items else {}
    return {}


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
def validate(directory: Path) -> None:
    """Load and validate a policy bundle.

    Each problem is printed as `error: file:line: message`; exit 1 if there is any.
    """
    bundle = PolicyBundle.from_directory(directory)
    n, t = len(bundle.policies), len(bundle.actions)
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
) -> None:
    """Decide one call without running anything, and say why.

    \b
    There is no tool here to take a JSON Schema from, so arguments are typed by
    how they are written: a number with a decimal point (42.5, 1200.0) is a
    Cedar decimal, one without (5) a Long; arrays are sets, objects records.

    Exit 0 if the call would be allowed, 2 if it would be refused, 1 on error.
    """
    bundle = PolicyBundle.from_directory(directory)
    rule = _fixed(resource) if resource else None
    when = time.time() if now is None else now
    gate, t = _tool_gate(bundle, tool, permissive_schema(args), rule, when)
    session = Session("warded-check")
    if labels:
        gate.label(session, labels)
    verdict = decide(gate, t, Principal(*principal), args, session)
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
        hidden = "no policy could ever permit this principal to call it"
        click.echo(f"  {hidden if tool in bundle.actions else 'the bundle has no such action'}")
    click.echo(f"bundle {verdict.version}")
    ctx.exit(0 if verdict.code == "allow" else 2)


def boundary(bundle: PolicyBundle, principal: Principal) -> dict[str, Any]:
    """A principal's boundary as data: per tool, whether it is available and why."""
    engine = Engine(bundle)
    tools = []
    for name in sorted(bundle.actions):
        entry: dict[str, Any] = {"tool": name, "available": engine.visible(principal, name)}
        if entry["available"]:
            uid = (principal.type, principal.id)
            nodes = slice_tree(bundle.tree, uid, bundle.actions[name], bundle.ancestors)
            kept = nodes.static_policies
            infos = sorted((bundle.policies[p] for p in kept), key=lambda i: (i.file, i.line or 0))
            for effect, key in (("permit", "allowed_by"), ("forbid", "never")):
                entry[key] = [_policy(i, kept[i.id]) for i in infos if i.effect == effect]
        tools.append(entry)
    return {"principal": str(principal), "bundle_version": bundle.version, "tools": tools}


def _policy(info: PolicyInfo, node: Any) -> dict[str, Any]:
    scope = node.resource
    entity, kind = getattr(scope, "entity", None), getattr(scope, "entity_type", None)
    resource = {
        "ScopeEq": f"resource == {entity}",
        "ScopeIn": f"resource in {entity}",
        "ScopeIs": f"resource is {kind}",
        "ScopeIsIn": f"resource is {kind} in {entity}",
    }.get(type(scope).__name__)
    return {
        "id": info.id,
        "description": info.description,
        "where": f"{info.file}:{info.line}",
        "conditional": bool(node.clauses),
        "resource": resource,
        "obligations": _obligations(info),
    }


def _explain_text(data: dict[str, Any]) -> Iterator[str]:
    yield f"{data['principal']} under policy bundle {data['bundle_version']}"
    for t in (t for t in data["tools"] if t["available"]):
        yield ""
        yield f"{t['tool']}: available"
        for p in t["allowed_by"]:
            notes = ["under conditions"] if p["conditional"] else []
            notes += [f"for {p['resource']}"] if p["resource"] else []
            yield "  allowed by " + ", ".join([p["id"], *notes, *p["obligations"]])
            yield f"    {p['description'] or '(no @description; ' + p['where'] + ')'}"
        for p in t["never"]:
            what = "never when" if p["conditional"] else "never"
            scope = f" (for {p['resource']})" if p["resource"] else ""
            text = p["description"] or f"(no @description; {p['where']})"
            yield f"  {what}: {text}{scope} [{p['id']}]"
    hidden = [t["tool"] for t in data["tools"] if not t["available"]]
    yield ""
    yield f"not available: {', '.join(hidden) or '(none)'}"


@click.command()
@_DIR
@_PRINCIPAL
@click.option("--json", "as_json", is_flag=True, help="Print the boundary as JSON.")
def explain(directory: Path, principal: tuple[str, str], as_json: bool) -> None:
    """An agent's boundary in plain language.

    For every tool: whether the agent can see it and, from the policies'
    @description, what permits it (with conditions and obligations) and what
    forbids it.
    """
    data = boundary(PolicyBundle.from_directory(directory), Principal(*principal))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for line in _explain_text(data):
        click.echo(line)
