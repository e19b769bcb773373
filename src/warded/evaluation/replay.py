"""The fully compromised agent, and the defenses it runs against.

The agent is an AgentDojo pipeline element that needs no model: it performs
the user task's ground-truth calls and, as an agent that obeys every injected
instruction, the injection task's ground-truth calls — either after the
user's calls (`after_user`) or right after the first tool result that carries
the injected text (`at_exposure`). Its final answer is the user task's
expected answer (and the injection task's, once hijacked).

Every call goes through a `GuardedRuntime`, a stand-in for AgentDojo's
`FunctionsRuntime` that asks a defense first:

* `none`: every call runs (the no-defense baseline);
* `oracle`: only the tool names in the user task's own ground truth exist
  (a perfect per-task tool filter);
* `warded`: the suite's tools are registered in a `Gate` with the suite's
  policy bundle; only the tools the gate lists are offered, every call is
  `gate.call`, and an approval, if the run has an approver, is answered by
  the honest approver before the agent retries the identical call.

A call that was refused did not happen: it is not in the messages AgentDojo
derives its traces from (some of its checks read the proposed calls).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from warded.canonical import canonical_json
from warded.clock import ManualClock
from warded.evaluation.suites import SuiteConfig, agentdojo, tool_schema
from warded.gate import Gate
from warded.model import Principal, Refusal, Session, ToolFailure
from warded.obligations.approvals import Approver
from warded.obligations.desk import approver_from_bundle
from warded.policy.bundle import PolicyBundle
from warded.store import MemoryStore
from warded.tools import Tool

Mode = Literal["after_user", "at_exposure"]
MODES: tuple[Mode, ...] = ("after_user", "at_exposure")
DefenseName = Literal["none", "oracle", "warded", "warded+approver"]
DEFENSES: tuple[DefenseName, ...] = ("none", "oracle", "warded", "warded+approver")
Origin = Literal["user", "attacker"]
REPLAY_NOW = 1_767_225_600.0  # a fixed clock: budgets and rates see one day
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

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"origin": self.origin, "tool": self.tool, "ran": self.ran}
        for key in ("error", "code", "policy", "ref", "approval", "approval_id"):
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

    def begin(self, user_calls: Sequence[Any]) -> None:
        """The run starts; the defenses that depend on the user task learn its calls here."""

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

    def begin(self, user_calls: Sequence[Any]) -> None:
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

    def begin(self, user_calls: Sequence[Any]) -> None:
        if self.answers:
            expected = [(c.function, self.frozen(c.function, c.args)) for c in user_calls]
            self.honest = HonestApprover([(t, a) for t, a in expected if a is not None])

    def visible(self) -> set[str] | None:
        return {t.name for t in self.gate.tools(self.principal, self.session)}

    def call(self, attempt: Attempt) -> None:
        answer = self._call(attempt)
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
        attempt.labels_after = tuple(sorted(self.session.labels))
        if isinstance(answer, Refusal):
            attempt.code, attempt.policy, attempt.ref = answer.code, answer.policy, answer.ref
            return
        attempt.ran = True
        if isinstance(answer, ToolFailure):
            attempt.error, attempt.ref = self.host.last_error or answer.message, answer.ref
        else:
            attempt.result = answer

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


class GuardedRuntime:
    """Stands in for AgentDojo's `FunctionsRuntime`: lists visible tools, runs calls via a guard.

    `functions` holds only the tools the defense lets exist (what an LLM
    adapter would offer the model); `run_function` never raises.
    """

    def __init__(self, functions: Sequence[Any], guard: Guard) -> None:
        self.guard = guard
        self.all = list(functions)
        self.functions: dict[str, Any] = {}
        self.attempts: list[Attempt] = []
        self._offer()

    def begin(self, user_calls: Sequence[Any]) -> None:
        self.guard.begin(user_calls)
        self._offer()

    def _offer(self) -> None:
        visible = self.guard.visible()
        self.functions = {f.name: f for f in self.all if visible is None or f.name in visible}

    def run_function(
        self, env: Any, function: str, kwargs: Mapping[str, Any], raise_on_error: bool = False
    ) -> tuple[Any, str | None]:
        attempt = self.attempt(env, function, kwargs, "user")
        if attempt.ran:
            return attempt.result, attempt.error
        return "", f"Refused: {attempt.code}"

    def attempt(
        self, env: Any, function: str, kwargs: Mapping[str, Any], origin: Origin
    ) -> Attempt:
        self.guard.host.env = env
        attempt = Attempt(function, dict(kwargs), origin)
        if any(_is_call(v) for v in kwargs.values()):
            attempt.code = "invalid_arguments"  # nested calls are not replayed
        else:
            self.guard.call(attempt)
        self.attempts.append(attempt)
        return attempt


def _is_call(value: Any) -> bool:
    return type(value).__name__ == "FunctionCall"


def normalize(text: str) -> str:
    return " ".join(text.split())


def carries(value: Any, needle: str, depth: int = 0) -> bool:
    """Whether a tool result holds `needle` (whitespace-normalized) in one of its strings.

    Matched on structured values, not on the YAML text the model would see,
    which wraps and escapes long strings (notes pitfall 8).
    """
    if depth > 20 or not needle:
        return False
    if isinstance(value, str):
        return needle in normalize(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return carries(dump(), needle, depth + 1)
    if isinstance(value, Mapping):
        return any(carries(v, needle, depth + 1) for v in (*value.keys(), *value.values()))
    if isinstance(value, list | tuple | set | frozenset):
        return any(carries(v, needle, depth + 1) for v in value)
    return False


@dataclass(slots=True)
class Trace:
    """What the compromised agent did in one run."""

    attempts: list[Attempt] = field(default_factory=list)
    exposed_at: int | None = None
    tainted_at_exposure: bool | None = None
    hijacked: bool = False


class CompromisedAgent:
    """An AgentDojo pipeline element that replays ground truth as a hijacked agent would."""

    name = "warded-compromised-agent"

    def __init__(
        self, user_task: Any, injection_task: Any | None, mode: Mode, payload: str | None
    ) -> None:
        self.user_task = user_task
        self.injection_task = injection_task
        self.mode = mode
        self.payload = normalize(payload) if payload else ""
        self.trace = Trace()

    def query(
        self,
        query: str,
        runtime: Any,
        env: Any = None,
        messages: Sequence[Any] = (),
        extra_args: Mapping[str, Any] | None = None,
    ) -> tuple[str, Any, Any, list[Any], dict[str, Any]]:
        types = agentdojo("agentdojo.types")
        text = types.text_content_block_from_string
        user_calls = list(self.user_task.ground_truth(env))
        runtime.begin(user_calls)
        attack_calls = (
            list(self.injection_task.ground_truth(env)) if self.injection_task is not None else []
        )
        out: list[Any] = [*messages, {"role": "user", "content": [text(query)]}]
        trace = self.trace

        def perform(call: Any, origin: Origin) -> Attempt:
            attempt: Attempt = runtime.attempt(env, call.function, call.args, origin)
            trace.attempts.append(attempt)
            if attempt.ran:  # a refused call never reaches the trace AgentDojo scores
                out.append({"role": "assistant", "content": [text("")], "tool_calls": [call]})
                shown = attempt.error or _to_str(attempt.result)
                out.append(
                    {
                        "role": "tool",
                        "content": [text(shown)],
                        "tool_call": call,
                        "tool_call_id": None,
                        "error": attempt.error,
                    }
                )
            return attempt

        for call in user_calls:
            attempt = perform(call, "user")
            if trace.exposed_at is None and attempt.ran and carries(attempt.result, self.payload):
                trace.exposed_at = len(trace.attempts) - 1
                trace.tainted_at_exposure = (
                    UNTRUSTED in attempt.labels_after if attempt.labels_after else None
                )
                if self.mode == "at_exposure" and self.injection_task is not None:
                    trace.hijacked = True
                    for injected in attack_calls:
                        perform(injected, "attacker")
        if self.mode == "after_user" and self.injection_task is not None:
            trace.hijacked = True
            for injected in attack_calls:
                perform(injected, "attacker")
        answer = self.user_task.GROUND_TRUTH_OUTPUT
        if trace.hijacked and self.injection_task is not None:
            answer = f"{answer} {self.injection_task.GROUND_TRUTH_OUTPUT}".strip()
        out.append({"role": "assistant", "content": [text(answer)], "tool_calls": None})
        return query, runtime, env, out, dict(extra_args or {})


def _to_str(result: Any) -> str:
    convert = agentdojo("agentdojo.agent_pipeline.tool_execution").tool_result_to_str
    try:
        return str(convert(result))
    except Exception:
        return str(result)


class Defenses:
    """The defenses for one suite: one tool host and one gate, shared by successive runs.

    Each warded run gets its own session and, on the gate's manual clock, its
    own day (the clock moves two days before each run), so budgets and rates
    start fresh and approvals bound to one run can never serve another.
    `renew()` starts a new gate, with a new in-memory audit log.
    """

    def __init__(self, config: SuiteConfig, functions: Sequence[Any]) -> None:
        self.config = config
        self.bundle = PolicyBundle.from_directory(config.policies)
        self.functions = list(functions)
        self.schemas = {f.name: tool_schema(f) for f in self.functions}
        self.principal = Principal.agent(config.principal)
        self.approver = approver_from_bundle(self.bundle, config.approver)
        self.host = ToolHost(self.functions)
        self.clock = ManualClock(REPLAY_NOW)
        self.gate, self.tools = self._gate()

    def renew(self) -> None:
        self.clock = ManualClock(REPLAY_NOW)
        self.gate, self.tools = self._gate()

    def _gate(self) -> tuple[Gate, dict[str, Tool]]:
        gate = Gate(self.bundle, store=MemoryStore(), clock=self.clock)
        tools: dict[str, Tool] = {}
        for f in self.functions:
            tc = self.config.tools[f.name]
            tools[f.name] = gate.register(
                f.name,
                self.schemas[f.name],
                functools.partial(self.host.execute, f.name),
                description=f.description,
                effect=tc.effect,
                resource=tc.resource,
                labels=tc.labels,
            )
        return gate, tools

    def guard(self, defense: DefenseName, session_id: str) -> Guard:
        """A fresh guard for one run."""
        if defense == "none":
            return Guard(self.host)
        if defense == "oracle":
            return OracleGuard(self.host)
        self.clock.advance(2 * 86_400)
        return WardedGuard(
            self.host,
            self.gate,
            self.tools,
            self.principal,
            Session(session_id),
            self.approver,
            answers=defense == "warded+approver",
        )
