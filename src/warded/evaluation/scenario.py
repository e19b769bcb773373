"""Red-team scenarios: adversarial calls replayed against a policy bundle through a real gate.

A scenario is a YAML file (format in docs/redteam.md): the bundle, the tools
as the agent registers them (JSON Schema, resource, labels), and a list of
steps run in order against one gate with an in-memory audit log and a manual
clock. Unlike `warded test`, which decides single requests, a scenario runs
the whole lifecycle — listing, validation, approvals, limits, execution — so
state carries from step to step: budgets fill up, approvals are used up.

Steps:

* `call: TOOL` with `args`, optional `session`, `labels` (added to the session
  first), `principal`, `repeat: N`; `expect` is `allow` or a refusal code, or
  a list with one per repetition; optional `policy`: the cited policy id;
* `approve: last` or `deny: last` (the approval the last call asked for),
  `as: APPROVER`; `expect` is `ok` or the approval problem
  (`not_in_group`, `self_approval`, `not_pending`, ...);
* `tools: [...]` with optional `principal`: exactly the tools listed;
* `ran: {TOOL: N}`: how many times each tool has really run so far;
* `advance: SECONDS`: move the clock.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from warded.clock import ManualClock
from warded.errors import REFUSAL_CODES, ApprovalError, WardedError
from warded.gate import Gate
from warded.model import Principal, Refusal, Session, ToolFailure
from warded.obligations.desk import approver_from_bundle
from warded.policy.bundle import PolicyBundle
from warded.store import MemoryStore
from warded.tools import EFFECTS

DEFAULT_NOW = 1_767_261_600.0  # 2026-01-01T10:00:00Z
_TOP = {
    "bundle",
    "principal",
    "now",
    "tools",
    "steps",
    "description",
    "scanners",
    "output_scanners",
}
SCANNERS = ("secrets", "pii", "injection")
_TOOL = {"parameters", "resource", "effect", "labels"}
_CALL = {"name", "call", "args", "session", "labels", "principal", "repeat", "expect", "policy"}
_DECIDE = {"name", "approve", "deny", "as", "expect"}


class ScenarioError(WardedError):
    """A scenario file is malformed; the message names the file and the step."""


@dataclass(frozen=True, slots=True)
class StepResult:
    index: int
    name: str
    ok: bool
    expected: str
    got: str


@dataclass(slots=True)
class Scenario:
    """A loaded scenario, ready to run."""

    path: Path
    bundle_dir: Path
    principal: Principal
    now: float
    tools: Mapping[str, Mapping[str, Any]]
    steps: list[dict[str, Any]]
    description: str = ""
    scanners: tuple[str, ...] = ()
    output_scanners: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path, bundle_dir: Path | None = None) -> Scenario:
        """Read and check a scenario file; raise ScenarioError naming what is wrong."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ScenarioError(f"{path}: {exc}") from None
        if not isinstance(data, dict) or set(data) - _TOP or "steps" not in data:
            raise ScenarioError(f"{path}: expected a mapping with {', '.join(sorted(_TOP))}")
        if bundle_dir is None:
            if not isinstance(data.get("bundle"), str):
                raise ScenarioError(f"{path}: no bundle: give --policies or a 'bundle:' path")
            bundle_dir = Path(os.path.normpath(path.parent / data["bundle"]))
        try:
            principal = parse_principal(str(data.get("principal", "")))
        except ValueError as exc:
            raise ScenarioError(f"{path}: principal: {exc}") from None
        tools = data.get("tools") or {}
        if not isinstance(tools, dict):
            raise ScenarioError(f"{path}: tools must be a mapping")
        for name, spec in tools.items():
            _check_tool(path, str(name), spec)
        steps = data["steps"]
        if not isinstance(steps, list) or not steps:
            raise ScenarioError(f"{path}: steps must be a non-empty list")
        for k, step in enumerate(steps):
            _check_step(path, k, step)
        now = data.get("now", DEFAULT_NOW)
        if not isinstance(now, int | float) or isinstance(now, bool):
            raise ScenarioError(f"{path}: now must be a number")
        scanners = {}
        for key in ("scanners", "output_scanners"):
            names = data.get(key) or []
            if not isinstance(names, list) or not all(n in SCANNERS for n in names):
                raise ScenarioError(f"{path}: {key} must be a list of {', '.join(SCANNERS)}")
            scanners[key] = tuple(names)
        return cls(
            path,
            bundle_dir,
            principal,
            float(now),
            tools,
            steps,
            str(data.get("description", "")),
            scanners["scanners"],
            scanners["output_scanners"],
        )

    def run(self) -> list[StepResult]:
        """Run every step against a fresh gate; one result per step."""
        return _Run(self).run()


class _Run:
    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.clock = ManualClock(scenario.now)
        self.bundle = PolicyBundle.from_directory(scenario.bundle_dir)
        self.gate = Gate(
            self.bundle,
            store=MemoryStore(),
            clock=self.clock,
            scanners=[_scanner(n) for n in scenario.scanners],
            output_scanners=[_scanner(n) for n in scenario.output_scanners],
        )
        self.ran: Counter[str] = Counter()
        self.sessions: dict[str, Session] = {}
        self.last_approval: str | None = None
        for name, spec in scenario.tools.items():
            self._register(str(name), spec or {})

    def _register(self, name: str, spec: Mapping[str, Any]) -> None:
        resource = spec.get("resource")

        def execute(**kwargs: Any) -> dict[str, Any]:
            self.ran[name] += 1
            return {"ran": name}

        rule = None
        if isinstance(resource, dict):
            kind, arg = str(resource["type"]), str(resource["arg"])

            def rule(args: Mapping[str, Any]) -> tuple[str, str]:
                return kind, str(args.get(arg, ""))

        self.gate.register(
            name,
            spec.get("parameters") or {"type": "object", "additionalProperties": True},
            execute,
            effect=str(spec.get("effect", "read")),
            resource=rule,
            labels=tuple(spec.get("labels") or ()),
        )

    def run(self) -> list[StepResult]:
        results = []
        for index, step in enumerate(self.s.steps):
            name = str(step.get("name") or f"step {index + 1}")
            try:
                expected, got = self._step(step)
            except WardedError as exc:
                expected, got = "(a step that runs)", f"error: {exc}"
            results.append(StepResult(index, name, expected == got, expected, got))
        return results

    def _step(self, step: Mapping[str, Any]) -> tuple[str, str]:
        if "call" in step:
            return self._call(step)
        if "approve" in step or "deny" in step:
            return self._decide(step)
        if "tools" in step:
            who = _principal(step.get("principal"), self.s.principal)
            listed = sorted(t.name for t in self.gate.tools(who, self._session("scenario")))
            return ", ".join(sorted(step["tools"])), ", ".join(listed)
        if "ran" in step:
            want = {str(k): int(v) for k, v in step["ran"].items()}
            got = {k: self.ran[k] for k in want}
            return _show(want), _show(got)
        self.clock.advance(float(step["advance"]))
        return "advanced", "advanced"

    def _session(self, name: str) -> Session:
        return self.sessions.setdefault(name, Session(name))

    def _call(self, step: Mapping[str, Any]) -> tuple[str, str]:
        session = self._session(str(step.get("session", "scenario")))
        if step.get("labels"):
            self.gate.label(session, step["labels"])
        who = _principal(step.get("principal"), self.s.principal)
        repeat = int(step.get("repeat", 1))
        expect = step["expect"]
        wanted = list(expect) if isinstance(expect, list) else [expect] * repeat
        policy = step.get("policy")
        got = []
        for _ in range(repeat):
            answer = self.gate.call(who, str(step["call"]), dict(step.get("args") or {}), session)
            got.append(self._code(answer, policy))
        wanted = [f"{w} ({policy})" if policy and w != "allow" else str(w) for w in wanted]
        return ", ".join(wanted), ", ".join(got)

    def _code(self, answer: Any, policy: Any) -> str:
        if isinstance(answer, Refusal):
            if answer.approval_id is not None:
                self.last_approval = answer.approval_id
            return f"{answer.code} ({answer.policy})" if policy else answer.code
        if isinstance(answer, ToolFailure):
            return "tool_failure"
        return "allow"

    def _decide(self, step: Mapping[str, Any]) -> tuple[str, str]:
        verb = "approve" if "approve" in step else "deny"
        expected = str(step.get("expect", "ok"))
        if self.last_approval is None:
            return expected, "no approval was asked for"
        try:
            approver = approver_from_bundle(self.bundle, str(step["as"]))
            if verb == "approve":
                self.gate.approvals.approve(self.last_approval, approver, "scenario")
            else:
                self.gate.approvals.deny(self.last_approval, approver, "scenario")
        except ApprovalError as exc:
            return expected, exc.problem
        return expected, "ok"


def _scanner(name: str) -> Any:
    """A built-in scanner by name (the secrets and PII ones need `warded[scan]`)."""
    import warded.scanners as scanners

    made = {
        "secrets": scanners.SecretsScanner,
        "pii": scanners.PiiScanner,
        "injection": scanners.InjectionScanner,
    }[name]
    return made()


def _principal(text: Any, default: Principal) -> Principal:
    return default if text is None else parse_principal(str(text))


def parse_principal(text: str) -> Principal:
    """`Type::"id"`, or a bare id of an Agent."""
    if "::" in text:
        return Principal.parse(text)
    if not text or '"' in text:
        raise ValueError(f"not a principal: {text!r}")
    return Principal.agent(text)


def _show(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))


def _check_tool(path: Path, name: str, spec: Any) -> None:
    where = f"{path}: tools.{name}"
    if spec is None:
        return
    if not isinstance(spec, dict) or set(spec) - _TOOL:
        raise ScenarioError(f"{where}: expected {', '.join(sorted(_TOOL))}")
    if spec.get("effect", "read") not in EFFECTS:
        raise ScenarioError(f"{where}: effect must be one of {', '.join(EFFECTS)}")
    resource = spec.get("resource")
    if resource is not None and (
        not isinstance(resource, dict) or set(resource) != {"type", "arg"}
    ):
        raise ScenarioError(f"{where}: resource must be {{type, arg}}")


def _check_step(path: Path, k: int, step: Any) -> None:
    where = f"{path}: steps[{k}]"
    if not isinstance(step, dict):
        raise ScenarioError(f"{where}: must be a mapping")
    if "call" in step:
        unknown = set(step) - _CALL
        if unknown or "expect" not in step:
            raise ScenarioError(f"{where}: a call step takes {', '.join(sorted(_CALL))}")
        expect = step["expect"]
        codes = expect if isinstance(expect, list) else [expect]
        for code in codes:
            if code != "allow" and code not in REFUSAL_CODES:
                raise ScenarioError(f"{where}: expect {code!r}: use allow or a refusal code")
        repeat = step.get("repeat", 1)
        if not isinstance(repeat, int) or repeat < 1:
            raise ScenarioError(f"{where}: repeat must be a positive integer")
        if isinstance(expect, list) and len(expect) != repeat:
            raise ScenarioError(f"{where}: expect has {len(expect)} answers for {repeat} calls")
        if not isinstance(step.get("args", {}), dict):
            raise ScenarioError(f"{where}: args must be a mapping")
    elif "approve" in step or "deny" in step:
        if set(step) - _DECIDE or "as" not in step or step.get("approve", "last") != "last":
            raise ScenarioError(f"{where}: approve/deny: last, with as: APPROVER")
        if step.get("deny", "last") != "last":
            raise ScenarioError(f"{where}: approve/deny: last, with as: APPROVER")
    elif "tools" in step:
        if set(step) - {"name", "tools", "principal"} or not isinstance(step["tools"], list):
            raise ScenarioError(f"{where}: tools: a list of names, optional principal")
    elif "ran" in step:
        if set(step) - {"name", "ran"} or not isinstance(step["ran"], dict):
            raise ScenarioError(f"{where}: ran: a mapping of tool to count")
    elif "advance" in step:
        value = step["advance"]
        if set(step) - {"name", "advance"} or not isinstance(value, int | float):
            raise ScenarioError(f"{where}: advance: a number of seconds")
        if isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ScenarioError(f"{where}: advance: a number of seconds")
    else:
        raise ScenarioError(f"{where}: a step is call, approve, deny, tools, ran or advance")
