"""`warded test`: policy test cases (request → expected answer), like `opa test`.

Every case file is read and checked first — its shape by the pydantic models
below, then each case against its bundle (a principal that is no entity or a
tool that is no action is a typo unless the case expects `unknown_tool`) —
and every mistake in every file is reported at once, before any case runs.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from warded.cli.common import Failure, emit_json, format_option, parse_uid
from warded.cli.decide import Verdict, _fixed, _from_arg, _tool_gate, decide, known_principal
from warded.errors import BundleError, RefusalCode, WardedError
from warded.gate import Gate
from warded.model import Principal, Session
from warded.policy.bundle import PolicyBundle
from warded.policy.signature import arguments
from warded.tools import ResourceRule, Tool, make_tool

DEFAULT_NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, when a test case gives no `now`
CASE_SUFFIXES = (".yaml", ".yml")

# -- the case file, as data ----------------------------------------------------


Expect = Literal[
    "allow",
    "unknown_tool",
    "invalid_arguments",
    "not_permitted",
    "approval_required",
    "limit_exceeded",
    "unavailable",
]
assert set(get_args(Expect)) == {"allow", *get_args(RefusalCode)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ResourceArgModel(_Strict):
    type: str
    arg: str


class ToolModel(_Strict):
    parameters: dict[str, Any] | None = None
    resource: str | ResourceArgModel | None = None


class CaseModel(_Strict):
    name: str = Field(min_length=1)
    principal: str
    tool: str
    expect: Expect
    args: dict[str, Any] = {}
    labels: list[str] = []
    now: float | None = None
    policies: list[str] | None = None
    errors: StrictBool | None = None
    requirement: str | None = None


class CaseFileModel(_Strict):
    bundle: str | None = None
    now: float = DEFAULT_NOW
    tools: dict[str, ToolModel | None] = {}
    cases: list[dict[str, Any]] = Field(min_length=1)  # each a CaseModel, checked one by one


# -- loaded cases ---------------------------------------------------------------


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
        """A gate for one case, with the case's tool registered as the file declares it.

        A tool the file does not declare gets the JSON Schema the Cedar schema
        implies for its action.
        """
        decl = self.tools.get(case.tool) or ToolDecl(None, None)
        params = decl.parameters
        if params is None:
            declared = case.tool in self.bundle.actions
            params = arguments(self.bundle, case.tool) if declared else {"type": "object"}
        return _tool_gate(self.bundle, case.tool, params, decl.resource, case.now, executor)


class CaseFileError(WardedError):
    """Case files with mistakes; `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(problems))


def load_cases(path: Path, bundle_dir: Path | None = None) -> CaseFile:
    """Read and check a case file (format: docs/cli.md); `bundle_dir` overrides its `bundle:`.

    Raises CaseFileError listing every mistake, each naming the file, the
    case and the key; a bundle that does not load is one of them.
    """
    problems: list[str] = []
    loaded = _load(path, bundle_dir, problems)
    if problems or loaded is None:
        raise CaseFileError(problems)
    return loaded


def _load(path: Path, bundle_dir: Path | None, problems: list[str]) -> CaseFile | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        line = f":{exc.problem_mark.line + 1}" if exc.problem_mark else ""
        problems.append(f"{path}{line}: invalid YAML: {exc.problem or exc.context}")
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(f"{path}: {exc}")
        return None
    try:
        model = CaseFileModel.model_validate(data)
    except ValidationError as exc:
        problems.extend(f"{path}: {_where(data, e['loc'])}: {e['msg']}" for e in exc.errors())
        return None
    if bundle_dir is None:
        if model.bundle is None:
            problems.append(f"{path}: no bundle: give --bundle DIR or a top-level 'bundle:' path")
            return None
        bundle_dir = Path(os.path.normpath(path.parent / model.bundle))
    try:
        bundle = PolicyBundle.from_directory(bundle_dir)
    except BundleError as exc:
        problems.extend(f"{path}: bundle {bundle_dir}: {p}" for p in exc.problems)
        return None
    before = len(problems)
    tools = {n: _tool(f"{path}: tools.{n}", n, t, problems) for n, t in model.tools.items()}
    cases = []
    for k, raw in enumerate(model.cases):
        try:
            c = CaseModel.model_validate(raw)
        except ValidationError as exc:
            problems.extend(
                f"{path}: {_where(data, ('cases', k, *e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            continue
        case = _case(f"{path}: cases[{k}] ({c.name})", c, model.now, bundle, problems)
        if case is not None:
            cases.append(case)
    if len(problems) > before:
        return None
    return CaseFile(path, bundle_dir, bundle, tools, tuple(cases))


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """`cases[3].expect`, with the case's name where there is one."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        try:
            name = data["cases"][loc[1]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            name = None
        if isinstance(name, str):
            out = out.replace(f"cases[{loc[1]}]", f"cases[{loc[1]}] ({name})", 1)
    return out or "(top level)"


def _tool(where: str, name: str, spec: ToolModel | None, problems: list[str]) -> ToolDecl:
    spec = spec or ToolModel()
    try:
        if spec.parameters is not None:
            make_tool(name, spec.parameters, lambda **_: None)
        if isinstance(spec.resource, str):
            return ToolDecl(spec.parameters, _fixed(parse_uid(spec.resource)))
    except (WardedError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return ToolDecl(None, None)
    rule = _from_arg(spec.resource.type, spec.resource.arg) if spec.resource else None
    return ToolDecl(spec.parameters, rule)


def _case(
    where: str, c: CaseModel, default_now: float, bundle: PolicyBundle, problems: list[str]
) -> Case | None:
    before = len(problems)
    if c.errors is not None and c.expect != "not_permitted":
        problems.append(f"{where}: 'errors' is only meaningful with expect: not_permitted")
    try:
        principal = Principal(*parse_uid(c.principal, "Agent"))
    except ValueError as exc:
        problems.append(f"{where}: principal: {exc}")
        return None
    if c.expect != "unknown_tool":  # otherwise a typo would pass as a deliberate probe
        if not known_principal(bundle, principal):
            problems.append(f"{where}: principal {principal} is not an entity of the bundle")
        if c.tool not in bundle.actions:
            problems.append(f"{where}: tool {c.tool!r} is not an action of the bundle")
    unknown = [p for p in c.policies or () if p not in bundle.policies]
    if unknown and len(problems) == before:
        problems.append(f"{where}: policies: {', '.join(unknown)} not in the bundle")
    if len(problems) > before:
        return None
    return Case(
        name=c.name,
        principal=principal,
        tool=c.tool,
        args=c.args,
        labels=tuple(c.labels),
        now=c.now if c.now is not None else default_now,
        expect=c.expect,
        policies=None if c.policies is None else tuple(c.policies),
        errors=c.errors,
        requirement=c.requirement,
    )


# -- running them ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One case run: what came back and how it differs from what was expected."""

    file: Path
    case: Case
    got: Verdict
    wrong: tuple[str, ...]


def mismatches(case: Case, got: Verdict) -> list[str]:
    """How `got` differs from what `case` expects; empty if the case passes."""
    out = []
    if got.code != case.expect:
        shown = got.code + (f" by {', '.join(got.policies)}" if got.policies else "")
        shown += f" ({got.detail})" if got.detail else ""
        out.append(f"expected {case.expect}, got {shown}")
        out += [f"engine error: {e}" for e in got.errors]
    if case.policies is not None and sorted(case.policies) != sorted(got.policies):
        out.append(f"expected policies {sorted(case.policies)}, got {sorted(got.policies)}")
    if case.errors is not None and case.errors != bool(got.errors):
        out.append("expected an evaluation error" if case.errors else "unexpected evaluation error")
    return out


def case_paths(paths: tuple[Path, ...]) -> list[Path]:
    """The case files named, with a folder standing for the case files in it."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in CASE_SUFFIXES)
            if not found:
                raise Failure(f"{path}: no case files (*.yaml, *.yml) in this folder")
            out += found
        else:
            out.append(path)
    return out


@click.command("test")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    metavar="CASES...",
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--bundle",
    "bundle_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Use this bundle for every file, in place of their 'bundle:' keys.",
)
@click.option("--run", "pattern", default=None, help="Only cases whose name matches this regex.")
@click.option("-v", "--verbose", is_flag=True, help="Print passing cases too.")
@format_option("text", "json", "junit")
@click.pass_context
def run_case_files(
    ctx: click.Context,
    paths: tuple[Path, ...],
    bundle_dir: Path | None,
    pattern: str | None,
    verbose: bool,
    fmt: str,
) -> None:
    """Run policy test cases (files, or folders of *.yaml); nothing runs or is audited.

    Every file is checked first and every mistake reported at once. Each
    failing case prints why. Exit 0 if every case passed, 1 otherwise.
    """
    try:
        chosen = re.compile(pattern) if pattern is not None else None
    except re.error as exc:
        raise Failure(f"--run: not a regular expression: {exc}") from None
    problems: list[str] = []
    files = []
    for path in case_paths(paths):
        loaded = _load(path, bundle_dir, problems)
        if loaded is not None:
            files.append(loaded)
    if problems:
        raise Failure(*problems)
    outcomes = [
        run_case(cf, case)
        for cf in files
        for case in cf.cases
        if chosen is None or chosen.search(case.name)
    ]
    if not outcomes:
        raise Failure(f"no case matches --run {pattern!r}")
    failed = sum(1 for o in outcomes if o.wrong)
    if fmt == "json":
        emit_json(_as_json(files, outcomes))
    elif fmt == "junit":
        click.echo(_as_junit(outcomes))
    else:
        _as_text(files, outcomes, verbose)
    ctx.exit(1 if failed else 0)


def run_case(cf: CaseFile, case: Case) -> Outcome:
    gate, tool = cf.gate(case)
    session = Session(case.name)
    if case.labels:
        gate.label(session, case.labels)
    got = decide(gate, tool, case.principal, case.args, session)
    return Outcome(cf.path, case, got, tuple(mismatches(case, got)))


def _as_text(files: list[CaseFile], outcomes: list[Outcome], verbose: bool) -> None:
    for cf in files:
        click.echo(f"{cf.path}: bundle {cf.bundle_dir}, version {cf.bundle.version}")
        for o in (o for o in outcomes if o.file == cf.path):
            if o.wrong:
                click.echo(f"FAIL  {o.case.name}")
                for reason in o.wrong:
                    click.echo(f"      {reason}")
            elif verbose:
                click.echo(f"PASS  {o.case.name}")
    failed = sum(1 for o in outcomes if o.wrong)
    click.echo(f"{len(outcomes) - failed} passed, {failed} failed")


def _as_json(files: list[CaseFile], outcomes: list[Outcome]) -> dict[str, Any]:
    failed = sum(1 for o in outcomes if o.wrong)
    return {
        "files": [
            {"path": str(cf.path), "bundle": str(cf.bundle_dir), "version": cf.bundle.version}
            for cf in files
        ],
        "cases": [
            {
                "file": str(o.file),
                "name": o.case.name,
                "passed": not o.wrong,
                "expected": o.case.expect,
                "got": o.got.code,
                "policies": list(o.got.policies),
                "reasons": list(o.wrong),
            }
            for o in outcomes
        ],
        "passed": len(outcomes) - failed,
        "failed": failed,
    }


def _as_junit(outcomes: list[Outcome]) -> str:
    failed = sum(1 for o in outcomes if o.wrong)
    root = ET.Element("testsuites", tests=str(len(outcomes)), failures=str(failed))
    for path in dict.fromkeys(o.file for o in outcomes):
        mine = [o for o in outcomes if o.file == path]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=str(path),
            tests=str(len(mine)),
            failures=str(sum(1 for o in mine if o.wrong)),
        )
        for o in mine:
            case = ET.SubElement(suite, "testcase", classname=str(path), name=o.case.name)
            if o.wrong:
                failure = ET.SubElement(case, "failure", message=o.wrong[0])
                failure.text = "\n".join(o.wrong)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
