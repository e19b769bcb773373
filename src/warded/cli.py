"""The `warded` command line.

    warded validate DIR                     a bundle loads, or every problem as file:line
    warded check DIR -p AGENT -t TOOL ...   one decision and why (a dry run)
    warded explain DIR -p AGENT             an agent's boundary in plain language
    warded test [DIR] CASES.yaml...         policy test cases (tests/cases/*.yaml)
    warded audit verify|tail|export|checkpoint DB

Exit codes: 0 success (for `check`: allowed; for `test`: every case passed);
1 an error, a usage error or a failed case; 2 `check` was refused. An error is
one `error: …` line per problem on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import click
import yaml

from warded.audit.record import AuditRecord, Checkpoint, verify
from warded.canonical import canonical_json, thaw
from warded.clock import ManualClock
from warded.errors import REFUSAL_CODES, ArgumentError, BundleError, WardedError
from warded.gate import Gate
from warded.model import Decision, Principal, Session
from warded.policy.bundle import PolicyBundle, PolicyInfo
from warded.policy.engine import Engine
from warded.policy.slicing import slice_tree
from warded.policy.values import to_cedar
from warded.request import build_context
from warded.stores.sqlite import SQLiteStore
from warded.tools import ResourceRule, Tool, make_tool

DEFAULT_NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, when a test case gives no `now`
_CASE_KEYS = {"args", "labels", "now", "policies", "errors", "requirement"}
_EXPECTED = (WardedError, OSError, ValueError, yaml.YAMLError, sqlite3.Error)
_UID = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)::(".*")$', re.S)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class Failure(click.ClickException):
    """An error shown as one `error: …` line per message on stderr; exit 1."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages or ("failed",)

    def show(self, file: IO[Any] | None = None) -> None:
        for message in self.messages:
            click.echo(f"error: {_one_line(message)}", err=True)


class _Usage(click.UsageError):
    exit_code: ClassVar[int] = 1  # 2 is reserved for "refused"


class _Group(click.Group):
    """Turns expected exceptions into `error:` lines; usage errors exit 1, not 2."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **kw: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **kw)
        except click.UsageError as exc:
            raise _Usage(exc.format_message(), exc.ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _Usage(exc.format_message(), exc.ctx) from None
        except BundleError as exc:
            raise Failure(*(str(p) for p in exc.problems)) from None
        except BrokenPipeError:
            raise  # click exits quietly when the reader went away (`| head`)
        except _EXPECTED as exc:
            raise Failure(str(exc) or type(exc).__name__) from None


def parse_uid(text: str, default_type: str | None = None) -> tuple[str, str]:
    """`Type::"id"` (namespaced types allowed), or a bare id of `default_type`."""
    m = _UID.match(text.strip())
    if m is None:
        if default_type is not None and text and '"' not in text and "::" not in text:
            return default_type, text
        raise ValueError(f'expected Type::"id", got {text!r}')
    try:
        entity_id = json.loads(m.group(2))
    except ValueError:
        entity_id = None
    if not isinstance(entity_id, str):
        raise ValueError(f"the id in {text!r} is not one quoted string")
    return m.group(1), entity_id


class _Entity(click.ParamType[tuple[str, str]]):
    name = "entity"

    def __init__(self, default_type: str | None = None) -> None:
        self.default_type = default_type

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return value if isinstance(value, tuple) else parse_uid(value, self.default_type)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _JsonObject(click.ParamType[dict[str, Any]]):
    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not JSON: {exc}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail("must be a JSON object", param, ctx)
        return parsed


_DIR = click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR"
)
_PRINCIPAL = click.option(
    "--principal",
    "-p",
    required=True,
    type=_Entity("Agent"),
    help='The agent: Agent::"billing-bot", or billing-bot for short.',
)


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
    """The engine's own answer, computed as the gate computes it; None if there is none."""
    try:
        value = thaw(canonical_json(tool.prepare(args)))
        if tool.check(value) is not None:
            return None
        entity_type, entity_id = tool.resource(value) if tool.resource else ("Tool", tool.name)
        context = build_context(to_cedar(value, tool.parameters), session, gate.clock.now())
        resource = {"type": entity_type, "id": entity_id}
        return Engine(gate.bundle).decide(principal, tool.name, resource, context)
    except Exception:  # only a diagnosis: the verdict itself comes from the gate
        return None


def _obligations(info: PolicyInfo) -> list[str]:
    out = [f"needs approval from {info.approval}"] if info.approval else []
    out += [f"rate limit {info.rate}"] if info.rate else []
    return out + ([f"budget {info.budget}"] if info.budget else [])


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
    verdict = decide(gate, t, Principal(*principal), args, Session("warded-check", labels))
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


# -- policy test cases --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolDecl:
    """A tool as a case file declares it: its JSON Schema and how calls name a resource."""

    parameters: Mapping[str, Any] | None
    resource: ResourceRule | None


@dataclass(frozen=True, slots=True)
class Case:
    """One policy test case: a request and the answer expected for it."""

    name: str
    principal: Principal
    tool: str
    args: Mapping[str, Any]
    labels: tuple[str, ...]
    now: float
    expect: str
    policies: tuple[str, ...] | None
    errors: bool | None
    requirement: str | None


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A loaded case file: its bundle, its tool declarations and its cases."""

    path: Path
    bundle_dir: Path
    bundle: PolicyBundle
    tools: Mapping[str, ToolDecl]
    cases: tuple[Case, ...]

    def gate(self, case: Case, executor: Callable[..., Any] | None = None) -> tuple[Gate, Tool]:
        """A gate for one case, with the case's tool registered as the file declares it."""
        decl = self.tools.get(case.tool) or ToolDecl(None, None)
        params = decl.parameters or permissive_schema(case.args)
        return _tool_gate(self.bundle, case.tool, params, decl.resource, case.now, executor)


def load_cases(path: Path, bundle_dir: Path | None = None) -> CaseFile:
    """Read a case file (format: docs/cli.md); `bundle_dir` overrides its `bundle:` key.

    Raises ValueError naming the file, the case index and the key that is wrong,
    and BundleError if the bundle does not load.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        line = f":{exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ValueError(f"{path}{line}: invalid YAML: {exc.problem or exc.context}") from None
    top = _mapping(str(path), data, {"cases"}, {"bundle", "tools", "now"})
    if bundle_dir is None:
        if not isinstance(top.get("bundle"), str):
            raise ValueError(f"{path}: no bundle: give DIR or a top-level 'bundle:' path")
        bundle_dir = Path(os.path.normpath(path.parent / top["bundle"]))
    now = float(_typed(str(path), "now", top.get("now", DEFAULT_NOW), (int, float), "a number"))
    tools = _typed(str(path), "tools", top.get("tools") or {}, dict, "a mapping")
    cases = _typed(str(path), "cases", top["cases"], list, "a list")
    return CaseFile(
        path=path,
        bundle_dir=bundle_dir,
        bundle=PolicyBundle.from_directory(bundle_dir),
        tools={str(n): _tool(f"{path}: tools.{n}", str(n), d) for n, d in tools.items()},
        cases=tuple(_case(f"{path}: cases[{k}]", c, now) for k, c in enumerate(cases)),
    )


def mismatches(case: Case, got: Verdict) -> list[str]:
    """How `got` differs from what `case` expects; empty if the case passes."""
    out = []
    if got.code != case.expect:
        shown = got.code + (f" by {', '.join(got.policies)}" if got.policies else "")
        out.append(f"expected {case.expect}, got {shown}")
    if case.policies is not None and sorted(case.policies) != sorted(got.policies):
        out.append(f"expected policies {sorted(case.policies)}, got {sorted(got.policies)}")
    if case.errors is not None and case.errors != bool(got.errors):
        out.append("expected an evaluation error" if case.errors else "unexpected evaluation error")
    return out


def _mapping(where: str, data: Any, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be a mapping")
    for key in sorted(required - data.keys()):
        raise ValueError(f"{where}: missing key {key!r}")
    for key in sorted(set(data) - required - optional, key=str):
        raise ValueError(f"{where}: unknown key {key!r}")
    return data


def _typed(where: str, key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}: {key!r} must be {what}")
    return value


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {key!r} must be a list of strings")
    return tuple(value)


def _tool(where: str, name: str, data: Any) -> ToolDecl:
    spec = _mapping(where, {} if data is None else data, set(), {"parameters", "resource"})
    params, resource = spec.get("parameters"), spec.get("resource")
    try:
        if params is not None:
            make_tool(name, params, lambda **_: None)
        if isinstance(resource, str):
            return ToolDecl(params, _fixed(parse_uid(resource)))
    except (WardedError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if resource is None:
        return ToolDecl(params, None)
    r = _mapping(f"{where}.resource", resource, {"type", "arg"}, set())
    return ToolDecl(params, _from_arg(str(r["type"]), str(r["arg"])))


def _case(where: str, data: Any, default_now: float) -> Case:
    c = _mapping(where, data, {"name", "principal", "tool", "expect"}, _CASE_KEYS)
    expect = c["expect"]
    if expect != "allow" and expect not in REFUSAL_CODES:
        raise ValueError(f"{where}: 'expect' must be allow or one of {', '.join(REFUSAL_CODES)}")
    errors = c.get("errors")
    if errors is not None and (not isinstance(errors, bool) or expect != "not_permitted"):
        raise ValueError(f"{where}: 'errors' must be true or false, with expect: not_permitted")
    who = _typed(where, "principal", c["principal"], str, "a string")
    try:
        principal = Principal(*parse_uid(who, "Agent"))
    except ValueError as exc:
        raise ValueError(f"{where}: 'principal': {exc}") from None
    policies = c.get("policies")
    return Case(
        name=_typed(where, "name", c["name"], str, "a string"),
        principal=principal,
        tool=_typed(where, "tool", c["tool"], str, "a string"),
        args=_typed(where, "args", c.get("args", {}), dict, "a mapping"),
        labels=_strings(where, "labels", c.get("labels", [])),
        now=float(_typed(where, "now", c.get("now", default_now), (int, float), "a number")),
        expect=expect,
        policies=None if policies is None else _strings(where, "policies", policies),
        errors=errors,
        requirement=_typed(where, "requirement", c.get("requirement", ""), str, "a string") or None,
    )


@click.command("test")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    metavar="[DIR] CASES.yaml...",
    type=click.Path(exists=True, path_type=Path),
)
@click.pass_context
def run_case_files(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Run policy test cases; nothing is executed or audited.

    If the first path is a directory, it is the bundle for every file in place
    of their `bundle:` keys. Exit 0 if every case passed, 1 otherwise.
    """
    bundle_dir = paths[0] if paths[0].is_dir() else None
    files = paths[1:] if bundle_dir else paths
    if not files:
        raise Failure("no case files given")
    loaded = [load_cases(f, bundle_dir) for f in files]
    passed = failed = 0
    for cf in loaded:
        click.echo(f"{cf.path}: bundle {cf.bundle_dir}, version {cf.bundle.version}")
        for case in cf.cases:
            gate, tool = cf.gate(case)
            got = decide(gate, tool, case.principal, case.args, Session(case.name, case.labels))
            wrong = mismatches(case, got)
            passed, failed = passed + (not wrong), failed + bool(wrong)
            click.echo(f"FAIL  {case.name}: {'; '.join(wrong)}" if wrong else f"PASS  {case.name}")
    click.echo(f"{passed} passed, {failed} failed")
    ctx.exit(1 if failed else 0)


# -- the audit log ------------------------------------------------------


_DB = click.argument("db", type=click.Path(path_type=Path), metavar="DB")
_OUT = click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout."
)


@click.group(cls=_Group)
def audit() -> None:
    """Verify, read and export a SQLite audit log."""


@contextmanager
def _store(path: Path) -> Iterator[SQLiteStore]:
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
@_DB
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
    with _store(db) as store:
        result = verify(store.records(), cp)
    if not result.ok:
        raise Failure(f"record {result.first_bad}: {result.reason}")
    against = f", matches checkpoint of {cp.size} records" if cp else ""
    click.echo(f"ok: {result.size} records, head {result.head}{against}")


@audit.command()
@_DB
@click.option("-n", "count", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record.")
def tail(db: Path, count: int, as_json: bool) -> None:
    """The last records of the log, oldest first (not verified; see `verify`)."""
    with _store(db) as store:
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
@_DB
@_OUT
def export(db: Path, out: Path | None) -> None:
    """Every record as a JSON line: its body plus its hash."""
    with _store(db) as store:
        lines = [_jsonl(r) + "\n" for r in store.records()]
    _emit("".join(lines), out)
    if out is not None:
        click.echo(f"ok: {len(lines)} records written to {out}")


@audit.command("checkpoint")
@_DB
@_OUT
def audit_checkpoint(db: Path, out: Path | None) -> None:
    """The log's size and head hash, for `verify --checkpoint` to catch truncation later."""
    with _store(db) as store:
        cp = store.checkpoint()
    _emit(json.dumps(cp.to_json(), sort_keys=True) + "\n", out)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@click.group(cls=_Group)
@click.version_option(package_name="warded")
def cli() -> None:
    """warded: execution authority for AI agents."""


for command in (validate, check, explain, run_case_files, audit):
    cli.add_command(command)


def main() -> None:
    """The console script; even a bug ends in one `error:` line, not a traceback."""
    try:
        cli.main(prog_name="warded")
    except Exception as exc:
        click.echo(f"error: internal error: {type(exc).__name__}: {_one_line(exc)}", err=True)
        sys.exit(1)
