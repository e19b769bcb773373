"""A policy bundle: Cedar policies, schema and entities, parsed, validated and frozen.

Loading never leaves a half-built bundle: it either returns a complete,
immutable `PolicyBundle` whose `version` is the content hash of its files, or
raises `BundleError` naming every problem with its file and line.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cedarpy
from cedarpy import pst

from warded.canonical import canonical_json, digest
from warded.errors import ArgumentError, BundleError, Problem
from warded.policy import annotations as ann
from warded.policy.locate import error_line, max_depth, statements
from warded.policy.schema import Record, UnsupportedSchema, read_schema
from warded.policy.schema import _unquote as unquote_cedar
from warded.policy.slicing import action_may_match
from warded.policy.source import BundleFiles, DirectorySource

BUNDLE_DOMAIN = "warded.bundle.v1"
Uid = tuple[str, str]

# Every action that a tool maps to must give policies this context.
CONTEXT_CONTRACT = (
    'context.args == context.args && context.session.id == "" && '
    'context.session.labels.contains("") && context.session.calls > 0 && '
    "context.now.epoch > 0 && context.now.hour > 0 && context.now.weekday > 0"
)
# An action whose context also declares `scan` gets the input scanners' findings,
# one Bool per declared field (each needs a scanner of that name on the gate).
SCAN_FIELDS = ("secrets", "pii", "injection")
CONTEXT_CONTRACT_TEXT = (
    "context { args: {...}, session: { id: String, labels: Set<String>, calls: Long }, "
    "now: { epoch: Long, hour: Long, weekday: Long } }"
)


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One policy as the governance document sees it."""

    id: str
    effect: str
    file: str
    line: int | None
    annotations: Mapping[str, str]
    approval: str | None = None
    rate: ann.Rate | None = None
    budget: ann.Budget | None = None
    redact: tuple[str, ...] = ()

    @property
    def description(self) -> str | None:
        return self.annotations.get("description")

    @property
    def owner(self) -> str | None:
        return self.annotations.get("owner")


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class PolicyBundle:
    """An immutable, validated bundle. Build one with `load` or `from_directory`."""

    version: str
    files: BundleFiles
    policies: Mapping[str, PolicyInfo]
    tree: pst.PolicySet
    policy_set: cedarpy.PolicySet
    schema: cedarpy.Schema
    entities: cedarpy.Entities
    ancestors: Mapping[Uid, frozenset[Uid]]
    actions: Mapping[str, Uid]
    obligated: frozenset[str] = frozenset()
    scanned: Mapping[str, frozenset[str]] = field(default_factory=dict)
    provenance: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    links: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_directory(cls, path: str | Path) -> PolicyBundle:
        return cls.load(DirectorySource(path).read())

    @classmethod
    def load(cls, files: BundleFiles) -> PolicyBundle:
        """Parse and validate `files`; raise BundleError with every problem found.

        Cedar's parsers recurse; so that no policy text can exhaust the stack
        and take the process down, loading runs on a thread with a large
        stack and statements above `MAX_STATEMENT` characters are refused
        before they reach the parser.
        """
        _check_sizes(files)
        return _on_big_stack(lambda: cls._load(files))

    @classmethod
    def _load(cls, files: BundleFiles) -> PolicyBundle:
        schema_name, schema_text = files.schema
        schema = _parse_schema(schema_name, schema_text)
        infos, tree = _parse_policies(files.policies)
        text = "\n".join(t for _, t in files.policies)
        _validate(text, schema, infos)
        entities, entity_list = _parse_entities(files.entities, schema)
        ancestors = _ancestors(entity_list)
        actions = _tool_actions(entity_list, schema_name, schema)
        _check_obligations(infos, tree, actions, ancestors, schema)
        scanned = _scan_fields(actions, schema)
        provenance = _provenance_args(actions, schema)
        links = _provenance_args(actions, schema, "links")
        return cls(
            version=bundle_version(files),
            files=files,
            policies=MappingProxyType(infos),
            tree=tree,
            policy_set=_build(tree, "policies"),
            schema=schema,
            entities=entities,
            ancestors=MappingProxyType(ancestors),
            actions=MappingProxyType(actions),
            obligated=frozenset(
                i.id for i in infos.values() if i.approval or i.rate or i.budget or i.redact
            ),
            scanned=MappingProxyType(scanned),
            provenance=MappingProxyType(provenance),
            links=MappingProxyType(links),
        )

    def action_uid(self, tool: str) -> dict[str, str] | None:
        """The Cedar action a tool name maps to, if the schema declares it."""
        uid = self.actions.get(tool)
        return None if uid is None else {"type": uid[0], "id": uid[1]}


MAX_STATEMENT = 100_000
MAX_DEPTH = 200  # Cedar's own tree conversion refuses nesting deeper than 100
MAX_SCHEMA = 2_000_000
STACK_BYTES = 512 * 1024 * 1024


def _check_sizes(files: BundleFiles) -> None:
    problems = []
    for name, text in files.policies:
        for line, statement in statements(text):
            if len(statement) > MAX_STATEMENT:
                size = f"policy is {len(statement)} characters; the limit is {MAX_STATEMENT}"
                problems.append(Problem(name, line, size))
            elif max_depth(statement) > MAX_DEPTH:
                nesting = f"brackets are nested more than {MAX_DEPTH} deep"
                problems.append(Problem(name, line, nesting))
    schema_name, schema_text = files.schema
    if len(schema_text) > MAX_SCHEMA:
        problems.append(
            Problem(schema_name, None, f"schema is larger than {MAX_SCHEMA} characters")
        )
    elif max_depth(schema_text) > MAX_DEPTH:
        problems.append(Problem(schema_name, None, f"nested more than {MAX_DEPTH} deep"))
    if problems:
        raise BundleError(problems)


def _on_big_stack(load: Callable[[], PolicyBundle]) -> PolicyBundle:
    result: list[PolicyBundle] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(load())
        except BaseException as exc:
            failure.append(exc)

    with _STACK_LOCK:
        previous = threading.stack_size(STACK_BYTES)
        try:
            worker = threading.Thread(target=run, name="warded-bundle-load")
            worker.start()
        finally:
            threading.stack_size(previous)
    worker.join()
    if failure:
        raise failure[0]
    return result[0]


_STACK_LOCK = threading.Lock()


def bundle_version(files: BundleFiles) -> str:
    """The content hash of a bundle's files: its version."""
    body = {
        "policies": [list(p) for p in files.policies],
        "schema": list(files.schema),
        "entities": list(files.entities) if files.entities else None,
    }
    try:
        return digest(BUNDLE_DOMAIN, canonical_json(body))[:16]
    except ArgumentError:
        # text that is not valid Unicode (a lone surrogate) has no canonical JSON:
        # hash its exact code points instead, under a domain of its own
        texts = [str(len(files.policies))] + [t for p in files.policies for t in p]
        texts += list(files.schema)
        texts += list(files.entities) if files.entities else ["\x00none"]
        raw = b"".join(
            len(b := t.encode("utf-8", "surrogatepass")).to_bytes(8, "big") + b for t in texts
        )
        return digest(BUNDLE_DOMAIN + ".raw", raw)[:16]


def _parse_schema(name: str, text: str) -> cedarpy.Schema:
    is_json = name.endswith(".json")
    loader = cedarpy.Schema.from_json_str if is_json else cedarpy.Schema.from_str
    try:
        return loader(text)
    except ValueError as exc:
        line = None if is_json else error_line(text, loader)
        raise BundleError([Problem(name, line, f"invalid schema: {exc}")]) from None


def _parse_policies(
    files: tuple[tuple[str, str], ...],
) -> tuple[dict[str, PolicyInfo], pst.PolicySet]:
    problems: list[Problem] = []
    infos: dict[str, PolicyInfo] = {}
    nodes: dict[str, pst.Template] = {}
    for name, text in files:
        try:
            handle = cedarpy.PolicySet.from_str(text)
        except ValueError as exc:
            problems.append(_parse_problem(name, text, str(exc)))
            continue
        try:
            parsed = handle.to_pst()
        except ValueError:
            problems.extend(_unreadable(name, text))
            continue
        if parsed.templates or parsed.template_links:
            problems.append(Problem(name, None, "policy templates are not supported"))
            continue
        starts = [line for line, _ in statements(text)]
        policies = list(parsed.static_policies.values())
        if len(starts) != len(policies):
            starts = [None] * len(policies)  # type: ignore[list-item]
        for node, line in zip(policies, starts, strict=True):
            info = _policy_info(node, name, line, problems)
            if info is None:
                continue
            if info.id in infos:
                first = infos[info.id]
                problems.append(
                    Problem(
                        name,
                        line,
                        f"duplicate @id {info.id!r} (first at {first.file}:{first.line})",
                    )
                )
                continue
            infos[info.id] = info
            nodes[info.id] = replace(node, id=info.id)
    if problems:
        raise BundleError(problems)
    return infos, pst.PolicySet(templates={}, static_policies=nodes, template_links=())


def _parse_problem(name: str, text: str, message: str) -> Problem:
    """Where a parse error is: the policy it is in, and the line it was noticed on."""
    for start, statement in statements(text):
        try:
            cedarpy.PolicySet.from_str(statement)
        except ValueError as exc:
            noticed = error_line(statement, cedarpy.PolicySet.from_str)
            at = None if noticed is None else start + noticed - 1
            near = f" (noticed at line {at})" if at is not None and at != start else ""
            return Problem(name, start, f"cannot parse the policy starting here: {exc}{near}")
    return Problem(name, None, f"cannot parse: {message}")


def _unreadable(name: str, text: str) -> list[Problem]:
    """The policies of a file that Cedar parses but cannot turn into a tree.

    Cedar checks an extension call's arity only when it evaluates it, so
    `false && decimal("1", "2")` parses and validates; warded reads every
    policy as a tree (to slice, explain and compile it) and refuses it.
    """
    problems = []
    for line, statement in statements(text):
        try:
            cedarpy.PolicySet.from_str(statement).to_pst()
        except ValueError as exc:
            try:
                policies = json.loads(cedarpy.policies_to_json_str(statement))["staticPolicies"]
                label = next(iter(policies.values())).get("annotations", {}).get("id")
            except (ValueError, KeyError, StopIteration, AttributeError, RecursionError):
                label = None
            named = f"policy {label!r}" if label else "this policy"
            problems.append(Problem(name, line, f"{named} cannot be read as a tree: {exc}"))
    return problems or [Problem(name, None, "the policies cannot be read as a tree")]


def _policy_info(
    node: pst.Template, file: str, line: int | None, problems: list[Problem]
) -> PolicyInfo | None:
    notes = dict(node.annotations)
    for key in notes:
        known = ann.lookalike(key)
        if known is not None:
            problems.append(
                Problem(file, line, f"unknown annotation @{key}: did you mean @{known}?")
            )
            return None
    public = notes.get("id") or f"{file}:{line if line is not None else node.id}"
    obligations: dict[str, Any] = {}
    for key, parse in (
        ("approval", ann.parse_approval),
        ("rate", ann.parse_rate),
        ("budget", ann.parse_budget),
        ("redact", ann.parse_redact),
    ):
        if key not in notes:
            continue
        if node.effect != "permit":
            problems.append(Problem(file, line, f"@{key} is only meaningful on a permit policy"))
            return None
        try:
            obligations[key] = parse(notes[key])
        except ValueError as exc:
            problems.append(Problem(file, line, str(exc)))
            return None
    return PolicyInfo(
        id=public,
        effect=str(node.effect),
        file=file,
        line=line,
        annotations=MappingProxyType(notes),
        **obligations,
    )


def _check_obligations(
    infos: Mapping[str, PolicyInfo],
    tree: pst.PolicySet,
    actions: Mapping[str, Uid],
    ancestors: Mapping[Uid, frozenset[Uid]],
    schema: cedarpy.Schema,
) -> None:
    """Obligations that could never work: an approval nobody can grant, a budget
    on something that is not a numeric argument of every tool it applies to."""
    problems: list[Problem] = []
    members = {
        group for uid, above in ancestors.items() if uid[0] == ann.APPROVER_TYPE for group in above
    }
    for info in infos.values():
        where = (info.file, info.line)
        if info.approval is not None:
            group = (ann.APPROVER_GROUP_TYPE, info.approval)
            if group not in ancestors:
                missing = f"there is no {ann.APPROVER_GROUP_TYPE}::{json.dumps(info.approval)}"
                problems.append(Problem(*where, f"policy {info.id!r}: @approval: {missing}"))
            elif group not in members:
                empty = f"no {ann.APPROVER_TYPE} is in group {info.approval!r}"
                problems.append(Problem(*where, f"policy {info.id!r}: @approval: {empty}"))
        if info.budget is not None:
            scope = tree.static_policies[info.id].action
            tools = {
                name: uid
                for name, uid in actions.items()
                if action_may_match(scope, uid, ancestors.get(uid, frozenset()))
            }
            for name, why in _not_numeric(tools, info.budget.path, schema).items():
                path = ".".join(info.budget.path)
                wrong = f"{path} is not a numeric argument of {name} ({why})"
                problems.append(Problem(*where, f"policy {info.id!r}: @budget: {wrong}"))
    if problems:
        raise BundleError(problems)


def _not_numeric(
    tools: Mapping[str, Uid], path: tuple[str, ...], schema: cedarpy.Schema
) -> dict[str, str]:
    """Of `tools`, those whose context has no Long or decimal at `context.<path>`.

    An optional one is accepted: a call that leaves it out is refused then.
    """
    names = list(tools)
    uids = [tools[n] for n in names]
    attr = "context." + ".".join(path)
    present = _probe(uids, f"{attr} == {attr}", schema)
    guard = " && ".join(
        f"{'.'.join(('context', *path[:k]))} has {path[k]}" for k in range(len(path))
    )
    as_long = _probe(uids, f"{guard} && {attr} == 0", schema)
    as_decimal = _probe(uids, f'{guard} && {attr}.lessThan(decimal("0.0"))', schema)
    out = {}
    for k, name in enumerate(names):
        missing = k in present and "optional attribute" not in present[k]
        if missing or (k in as_long and k in as_decimal):
            why = present.get(k) if missing else as_long.get(k)
            out[name] = (why or "not a number").split(", ", 1)[-1]
    return out


def _validate(text: str, schema: cedarpy.Schema, infos: dict[str, PolicyInfo]) -> None:
    result = cedarpy.validate_policies(text, schema)
    if result.validation_passed:
        return
    ordered = list(infos.values())
    problems = []
    for err in result.errors:
        info = _positional(err.policy_id, ordered)
        where = (info.file, info.line) if info else ("policies", None)
        message = err.error.replace(f"for policy `{err.policy_id}`, ", "")
        label = f"policy {info.id!r}: " if info else ""
        problems.append(Problem(where[0], where[1], f"{label}{message}"))
    raise BundleError(problems)


def _positional(policy_id: str, ordered: list[PolicyInfo]) -> PolicyInfo | None:
    if policy_id.startswith("policy") and policy_id[6:].isdigit():
        k = int(policy_id[6:])
        if k < len(ordered):
            return ordered[k]
    return None


def _parse_entities(
    entities: tuple[str, str] | None, schema: cedarpy.Schema
) -> tuple[cedarpy.Entities, list[dict[str, Any]]]:
    name, text = entities if entities else ("entities.json", "[]")
    try:
        handle = cedarpy.Entities.from_json_str(text, schema=schema)
        listed = json.loads(str(handle))
    except ValueError as exc:
        raise BundleError([Problem(name, None, f"invalid entities: {exc}")]) from None
    return handle, listed


def _ancestors(entity_list: list[dict[str, Any]]) -> dict[Uid, frozenset[Uid]]:
    parents: dict[Uid, set[Uid]] = {}
    for e in entity_list:
        uid = (e["uid"]["type"], e["uid"]["id"])
        parents[uid] = {(p["type"], p["id"]) for p in e.get("parents", [])}
    closed: dict[Uid, frozenset[Uid]] = {}

    def close(uid: Uid, seen: frozenset[Uid]) -> frozenset[Uid]:
        if uid in closed:
            return closed[uid]
        out: set[Uid] = set()
        for p in parents.get(uid, ()):
            if p in seen:
                continue
            out.add(p)
            out |= close(p, seen | {p})
        closed[uid] = frozenset(out)
        return closed[uid]

    for uid in parents:
        close(uid, frozenset({uid}))
    return closed


def _tool_actions(
    entity_list: list[dict[str, Any]], schema_name: str, schema: cedarpy.Schema
) -> dict[str, Uid]:
    """Actions that apply to requests (not pure groups), checked against the context contract."""
    actions = [
        (e["uid"]["type"], e["uid"]["id"])
        for e in entity_list
        if e["uid"]["type"] == "Action" or e["uid"]["type"].endswith("::Action")
    ]
    failures = _probe(actions, CONTEXT_CONTRACT, schema)
    out: dict[str, Uid] = {}
    problems: list[Problem] = []
    for k, (t, i) in enumerate(actions):
        error = failures.get(k)
        if error and "unable to find an applicable action" in error:
            continue  # an action group: no request can name it
        if error:
            problems.append(
                Problem(
                    schema_name,
                    None,
                    f"action {t}::{json.dumps(i)} does not declare the context warded provides: "
                    f"{CONTEXT_CONTRACT_TEXT} ({error.split(', ', 1)[-1]})",
                )
            )
        elif i in out:
            problems.append(
                Problem(schema_name, None, f"action name {i!r} is declared in two namespaces")
            )
        else:
            out[i] = (t, i)
    if problems:
        raise BundleError(problems)
    return out


def _probe(actions: list[Uid], condition: str, schema: cedarpy.Schema) -> dict[int, str]:
    """Validate `condition` for each action; the first error per action, by position."""
    if not actions:
        return {}
    probes = "\n".join(
        f"permit(principal, action == {t}::{json.dumps(i)}, resource) when {{ {condition} }};"
        for t, i in actions
    )
    failures: dict[int, str] = {}
    for err in cedarpy.validate_policies(probes, schema).errors:
        failures.setdefault(int(err.policy_id[6:]), err.error)
    return failures


def _scan_fields(actions: Mapping[str, Uid], schema: cedarpy.Schema) -> dict[str, frozenset[str]]:
    """Per tool action, the `context.scan` fields its context declares (Bool each)."""
    names = list(actions)
    uids = [actions[n] for n in names]
    declared: dict[str, set[str]] = {}
    for scan_field in SCAN_FIELDS:
        failures = _probe(uids, f"context.scan.{scan_field}", schema)
        for k, name in enumerate(names):
            if k not in failures:
                declared.setdefault(name, set()).add(scan_field)
    return {name: frozenset(fields) for name, fields in declared.items()}


def _provenance_args(
    actions: Mapping[str, Uid], schema: cedarpy.Schema, key: str = "provenance"
) -> dict[str, tuple[str, ...]]:
    """Per tool action, the argument names its context declares under `key`
    (`provenance: { to: Set<String>, ... }`, or `links: { body: { count: Long,
    provenance: Set<String> } }`), sorted; tools that declare none are left out.

    Read from the schema (`warded.policy.schema`); a schema that reader does not
    model is asked of Cedar's validator instead (`_provenance_probed`), with every
    name the schema's text spells as a candidate.
    """
    try:
        read = read_schema(str(schema))
    except UnsupportedSchema:
        return _provenance_probed(actions, _names_in(str(schema)), schema, key)
    out: dict[str, tuple[str, ...]] = {}
    for tool, uid in actions.items():
        action = read.actions.get(uid)
        declared = None if action is None else action.context.attrs.get(key)
        if declared is not None and isinstance(declared[0], Record) and declared[0].attrs:
            out[tool] = tuple(sorted(declared[0].attrs))
    return out


_PROBES = {  # what a declared name must allow, per context key
    "provenance": 'context.provenance[{name}].contains("")',
    "links": 'context.links[{name}].count == 0 && context.links[{name}].provenance.contains("")',
}


def _provenance_probed(
    actions: Mapping[str, Uid],
    candidates: Iterable[str],
    schema: cedarpy.Schema,
    key: str = "provenance",
) -> dict[str, tuple[str, ...]]:
    """Of `candidates`, those each tool action's context declares under `key` with
    the type `_PROBES` says, asked of Cedar's validator."""
    having = {
        tool: uid
        for k, (tool, uid) in enumerate(actions.items())
        if k not in _probe([uid], f"context.{key} == context.{key}", schema)
    }
    names = sorted(set(candidates))
    out: dict[str, tuple[str, ...]] = {}
    for tool, uid in having.items():
        probes = [_PROBES[key].format(name=json.dumps(n)) for n in names]
        failures = _probe_each(uid, probes, schema)
        found = tuple(n for k, n in enumerate(names) if k not in failures)
        if found:
            out[tool] = found
    return out


_NAME_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*)')


def _names_in(text: str) -> set[str]:
    """Every identifier and string literal in a schema's text (the attribute names
    among them), literals unescaped as Cedar reads them."""
    out: set[str] = set()
    for quoted, bare in _NAME_TOKEN.findall(text):
        if bare:
            out.add(bare)
            continue
        try:
            out.add(unquote_cedar(f'"{quoted}"'))
        except (UnsupportedSchema, ValueError):
            continue  # not a name Cedar would read: an action that declares it fails closed
    return out


def _probe_each(uid: Uid, conditions: list[str], schema: cedarpy.Schema) -> set[int]:
    """Which of `conditions` fail to validate for one action, by position."""
    if not conditions:
        return set()
    action = f"{uid[0]}::{json.dumps(uid[1])}"
    probes = "\n".join(
        f"permit(principal, action == {action}, resource) when {{ {c} }};" for c in conditions
    )
    return {int(e.policy_id[6:]) for e in cedarpy.validate_policies(probes, schema).errors}


def _build(tree: pst.PolicySet, what: str) -> cedarpy.PolicySet:
    try:
        return cedarpy.PolicySet.from_pst(tree)
    except ValueError as exc:  # pragma: no cover - the tree came from a successful parse
        raise BundleError([Problem(what, None, f"cannot build policy set: {exc}")]) from None
