"""The fully compromised agent: an AgentDojo pipeline element that needs no model.

It performs the user task's ground-truth calls and, as an agent that obeys
every injected instruction, the injection task's ground-truth calls — either
after the user's calls (`after_user`) or right after the first tool result
that carries the injected text (`at_exposure`). Its final answer is the user
task's expected answer (and the injection task's, once hijacked).

Every call goes through a `GuardedRuntime`, which stands in for AgentDojo's
`FunctionsRuntime` and asks a defense (`warded.evaluation.defenses`) first.
A call that was refused did not happen: it is not in the messages AgentDojo
derives its traces from (some of its checks read the proposed calls).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from warded.evaluation.defenses import UNTRUSTED, Attempt, Guard, Origin
from warded.evaluation.suites import agentdojo

Mode = Literal["after_user", "at_exposure"]
MODES: tuple[Mode, ...] = ("after_user", "at_exposure")


class GuardedRuntime:
    """Stands in for AgentDojo's `FunctionsRuntime`: lists visible tools, runs calls via a guard.

    `functions` holds only the tools the defense lets exist (what an LLM
    adapter would offer the model); `run_function` never raises.
    """

    def __init__(self, functions: Sequence[Any], guard: Guard) -> None:
        self.guard = guard
        self.all = list(functions)
        self.attempts: list[Attempt] = []

    def begin(self, prompt: str, user_calls: Sequence[Any]) -> None:
        self.guard.begin(prompt, user_calls)

    @property
    def functions(self) -> dict[str, Any]:
        """The tools visible now (listed on demand: the replayed agent never reads them)."""
        visible = self.guard.visible()
        return {f.name: f for f in self.all if visible is None or f.name in visible}

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
        self.answer = ""
        # a tool message's text is what a model would read; a run whose messages
        # are read only for the calls and the answer can go without it
        self.show_results = True

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
        runtime.begin(query, user_calls)
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
                shown = attempt.error or (_to_str(attempt.result) if self.show_results else "")
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
        self.answer = answer
        out.append({"role": "assistant", "content": [text(answer)], "tool_calls": None})
        return query, runtime, env, out, dict(extra_args or {})


def _to_str(result: Any) -> str:
    convert = agentdojo("agentdojo.agent_pipeline.tool_execution").tool_result_to_str
    try:
        return str(convert(result))
    except Exception:
        return str(result)
