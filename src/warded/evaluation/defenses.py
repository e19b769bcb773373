"""The defenses a replayed call meets, and the honest approver.

* `none`: every call runs (the no-defense baseline);
* `oracle`: only the tool names in the user task's own ground truth exist
  (a perfect per-task tool filter);
* `warded`: the suite's tools are registered in a `Gate` with the suite's
  policy bundle (`examples/agentdojo/<suite>/`, which judges each write's
  target by its provenance) and the injection scanner on every result
  (`InjectionScanner()` at its default threshold, told the suite's tool
  names by the gate as in production, `Gate._tool_scanners`: what it flags is
  remembered as a flagged region, `warded.flagged`, whose values the
  policies refuse outright); the user's request is declared trusted
  (`gate.trust`) when the run starts; only the tools the gate lists are
  offered and every call is `gate.call`; with `warded+approver`, an approval
  is answered by the honest approver and the agent retries the identical call;
* `labels`, `labels+approver`: the same gate with the baseline bundle
  (`examples/agentdojo-labels/<suite>/`), which judges by session labels only,
  and no output scanner.

The tools themselves are AgentDojo's, run by its `FunctionsRuntime` on the
run's environment (`ToolHost`), with the arguments the gate froze.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from warded.canonical import canonical_json
from warded.clock import ManualClock
from warded.evaluation.suites import SuiteConfig, agentdojo, tool_schema
from warded.gate import Gate
from warded.model import Principal, Refusal, Session, ToolFailure
from warded.obligations.approvals import Approver
from warded.obligations.desk import approver_from_bundle
from warded.policy.bundle import PolicyBundle
from warded.scanners.base import Scanner
from warded.scanners.injection import InjectionScanner
from warded.store import MemoryStore
from warded.tools import Tool

DefenseName = Literal["none", "oracle", "labels", "labels+approver", "warded", "warded+approver"]
DEFENSES: tuple[DefenseName, ...] = (
    "none",
    "oracle",
    "labels",
    "labels+approver",
    "warded",
    "warded+approver",
)
Arm = Literal["labels", "warded"]
ARMS: tuple[Arm, ...] = ("labels", "warded")
Origin = Literal["user", "attacker"]
# Each policy set's output scanners: the provenance policies refuse what the
# injection scanner flags; the labels baseline stays as it was. No tool names are
# passed here: the gate tells the scanner the tools registered on it.
ARM_SCANNERS: Mapping[Arm, Callable[[], list[Scanner]]] = {
    "labels": list,
    "warded": lambda: [InjectionScanner()],
}
REPLAY_NOW = 1_767_225_600.0  # the gates' manual clock starts here (2026-01-01)
UNTRUSTED = "untrusted"


@dataclass(slots=True)
class Attempt:
    """One call the agent made and what became of it."""

    tool: str
    args: dict[str, Any]
    origin: Origin = "user"
    ran: bool = False
    result: Any = None
    error: str | None = None
    code: str | None = None
    policy: str | None = None
    ref: str | None = None
    approval: Literal["approved", "denied"] | None = None
    approval_id: str | None = None
    labels_after: tuple[str, ...] = ()
    effect: str = "unknown"  # the tool's effect as tools.yaml declares it
    provenance: Any = None  # what the refusal's audit record says of the arguments' sources

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"origin": self.origin, "tool": self.tool, "ran": self.ran}
        for key in ("error", "code", "policy", "ref", "approval", "approval_id", "provenance"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class ToolHost:
    """Runs AgentDojo functions on the current environment, as the gate's executors."""

    def __init__(self, functions: Sequence[Any]) -> None:
        runtime_cls = agentdojo("agentdojo.functions_runtime").FunctionsRuntime
        self.runtime = runtime_cls(list(functions))
        self.env: Any = None
        self.last_error: str | None = None

    def execute(self, name: str, **kwargs: Any) -> Any:
        try:
            result, _ = self.runtime.run_function(self.env, name, kwargs, raise_on_error=True)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        return result

    def direct(self, name: str, args: Mapping[str, Any]) -> tuple[Any, str | None]:
        result, error = self.runtime.run_function(self.env, name, dict(args))
        return result, error


class Guard:
    """One defense for one run: which tools exist, and what happens to each call."""

    def __init__(self, host: ToolHost) -> None:
        self.host = host

    def begin(self, prompt: str, user_calls: Sequence[Any]) -> None:
        """The run starts: the user's request and, for the oracle and the approver, its calls."""

    def visible(self) -> set[str] | None:
        return None

    def call(self, attempt: Attempt) -> None:
        attempt.result, attempt.error = self.host.direct(attempt.tool, attempt.args)
        attempt.ran = True


class OracleGuard(Guard):
    """Only the tools the user task's ground truth uses exist."""

    def __init__(self, host: ToolHost) -> None:
        super().__init__(host)
        self.allowed: set[str] = set()

    def begin(self, prompt: str, user_calls: Sequence[Any]) -> None:
        self.allowed = {c.function for c in user_calls}

    def visible(self) -> set[str] | None:
        return set(self.allowed)

    def call(self, attempt: Attempt) -> None:
        if attempt.tool not in self.allowed:
            attempt.code = "unknown_tool"
            return
        super().call(attempt)


class HonestApprover:
    """Approves a pending call only if it is exactly one of the user task's ground-truth calls.

    Each ground-truth call can be approved as many times as it occurs there.
    """

    def __init__(self, expected: Sequence[tuple[str, str]]) -> None:
        self.remaining = Counter(expected)
        self.approved = 0
        self.denied = 0

    def decide(self, tool: str, frozen_args: str) -> bool:
        key = (tool, frozen_args)
        if self.remaining[key] > 0:
            self.remaining[key] -= 1
            self.approved += 1
            return True
        self.denied += 1
        return False


class WardedGuard(Guard):
    """Every call through `gate.call`; approvals, if any, answered by the honest approver."""

    def __init__(
        self,
        host: ToolHost,
        gate: Gate,
        tools: Mapping[str, Tool],
        principal: Principal,
        session: Session,
        approver: Approver,
        answers: bool,
    ) -> None:
        super().__init__(host)
        self.gate = gate
        self.tools = tools
        self.principal = principal
        self.session = session
        self.approver = approver
        self.answers = answers
        self.honest: HonestApprover | None = None

    def begin(self, prompt: str, user_calls: Sequence[Any]) -> None:
        self.gate.trust(self.session, prompt, source="user")
        if self.answers:
            expected = [(c.function, self.frozen(c.function, c.args)) for c in user_calls]
            self.honest = HonestApprover([(t, a) for t, a in expected if a is not None])

    def visible(self) -> set[str] | None:
        return {t.name for t in self.gate.tools(self.principal, self.session)}

    def call(self, attempt: Attempt) -> None:
        answer = self._call(attempt)
        if isinstance(answer, Refusal):
            attempt.provenance = self.provenance(answer.ref)
            attempt.policy = answer.policy
        if isinstance(answer, Refusal) and answer.code == "approval_required":
            attempt.approval_id = answer.approval_id
        if (
            isinstance(answer, Refusal)
            and answer.code == "approval_required"
            and answer.approval_id is not None
            and self.honest is not None
        ):
            pending = self.gate.approvals.get(answer.approval_id)
            if self.honest.decide(pending.tool, pending.args):
                self.gate.approvals.approve(pending.id, self.approver, "a call the user asked for")
                attempt.approval = "approved"
                answer = self._call(attempt)  # the agent retries the identical call
            else:
                self.gate.approvals.deny(pending.id, self.approver, "not what the user asked for")
                attempt.approval = "denied"
        attempt.labels_after = tuple(sorted(self.gate.session_state(self.session).labels))
        if isinstance(answer, Refusal):
            attempt.code, attempt.policy, attempt.ref = answer.code, answer.policy, answer.ref
            return
        attempt.ran = True
        if isinstance(answer, ToolFailure):
            attempt.error, attempt.ref = self.host.last_error or answer.message, answer.ref
        else:
            attempt.result = answer

    def provenance(self, ref: str) -> Any:
        """The provenance the gate recorded with decision `ref` (among the newest records)."""
        size = self.gate.store.checkpoint().size
        for record in reversed(list(self.gate.store.records(max(0, size - 8)))):
            body = record.body
            if body.get("id") == ref:
                return _find(body, "provenance")
        return None

    def _call(self, attempt: Attempt) -> Any:
        self.host.last_error = None
        return self.gate.call(self.principal, attempt.tool, attempt.args, self.session)

    def frozen(self, tool: str, args: Mapping[str, Any]) -> str | None:
        """A call's arguments as an approval records them: defaults filled, canonical JSON."""
        t = self.tools.get(tool)
        if t is None:
            return None
        try:
            return canonical_json(t.prepare(args)).decode()
        except Exception:
            return None


def _find(value: Any, key: str, depth: int = 0) -> Any:
    """The first value under `key` anywhere in a JSON document, or None."""
    if depth > 8:
        return None
    if isinstance(value, dict):
        if key in value:
            return value[key]
        items: list[Any] = list(value.values())
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        found = _find(item, key, depth + 1)
        if found is not None:
            return found
    return None


class Defenses:
    """The defenses for one suite: one tool host and, per policy set, one gate.

    Each warded run gets its own session and, on the gate's manual clock, its
    own day (the clock moves two days before each run), so budgets and rates
    start fresh and approvals bound to one run can never serve another.
    `renew()` starts new gates, with new in-memory audit logs.
    """

    def __init__(self, configs: Mapping[Arm, SuiteConfig], functions: Sequence[Any]) -> None:
        self.functions = list(functions)
        self.schemas = {f.name: tool_schema(f) for f in self.functions}
        self.host = ToolHost(self.functions)
        self.arms = {
            arm: PolicyArm(config, self, scanners=ARM_SCANNERS[arm])
            for arm, config in configs.items()
        }

    def renew(self) -> None:
        for arm in self.arms.values():
            arm.renew()

    def guard(self, defense: DefenseName, session_id: str) -> Guard:
        """A fresh guard for one run."""
        if defense == "none":
            return Guard(self.host)
        if defense == "oracle":
            return OracleGuard(self.host)
        arm = self.arms["labels" if defense.startswith("labels") else "warded"]
        arm.clock.advance(2 * 86_400)
        arm.runs += 1  # a session per run, even when a pair is replayed on the same gate
        return WardedGuard(
            self.host,
            arm.gate,
            arm.tools,
            arm.principal,
            Session(f"{session_id}#{arm.runs}"),
            arm.approver,
            answers=defense.endswith("+approver"),
        )


class PolicyArm:
    """One policy set of a suite (its bundle and tools.yaml) and the gate that enforces it."""

    def __init__(
        self, config: SuiteConfig, defenses: Defenses, scanners: Callable[[], list[Scanner]]
    ) -> None:
        self.config = config
        self.defenses = defenses
        self.scanners = scanners
        self.bundle = PolicyBundle.from_directory(config.policies)
        self.principal = Principal.agent(config.principal)
        self.approver = approver_from_bundle(self.bundle, config.approver)
        self.clock = ManualClock(REPLAY_NOW)
        self.runs = 0
        self.gate, self.tools = self._gate()

    def renew(self) -> None:
        self.clock = ManualClock(REPLAY_NOW)
        self.gate, self.tools = self._gate()

    def _gate(self) -> tuple[Gate, dict[str, Tool]]:
        gate = Gate(
            self.bundle, store=MemoryStore(), clock=self.clock, output_scanners=self.scanners()
        )
        tools: dict[str, Tool] = {}
        host = self.defenses.host
        for f in self.defenses.functions:
            tc = self.config.tools[f.name]
            tools[f.name] = gate.register(
                f.name,
                self.defenses.schemas[f.name],
                functools.partial(host.execute, f.name),
                description=f.description,
                effect=tc.effect,
                resource=tc.resource,
                labels=tc.labels,
            )
        return gate, tools
