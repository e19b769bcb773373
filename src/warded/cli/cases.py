"""`warded test`: policy test cases (request → expected answer), like `opa test`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from warded.cli.common import Failure, parse_uid
from warded.cli.decide import Verdict, _fixed, _from_arg, _tool_gate, decide, permissive_schema
from warded.errors import REFUSAL_CODES, WardedError
from warded.gate import Gate
from warded.model import Principal, Session
from warded.policy.bundle import PolicyBundle
from warded.tools import ResourceRule, Tool, make_tool

DEFAULT_NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, when a test case gives no `now`
_CASE_KEYS = {"args", "labels", "now", "policies", "errors", "requirement"}


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
            session = Session(case.name)
            if case.labels:
                gate.label(session, case.labels)
            got = decide(gate, tool, case.principal, case.args, session)
            wrong = mismatches(case, got)
            passed, failed = passed + (not wrong), failed + bool(wrong)
            click.echo(f"FAIL  {case.name}: {'; '.join(wrong)}" if wrong else f"PASS  {case.name}")
    click.echo(f"{passed} passed, {failed} failed")
    ctx.exit(1 if failed else 0)
