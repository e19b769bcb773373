"""Run every (user task, injection task) pair of a suite under every defense and mode.

Each run is scored by AgentDojo itself (`TaskSuite.run_task_with_pipeline`
with the compromised agent as the pipeline and a `GuardedRuntime` as the
runtime): utility is the user task's check, security the injection task's
check ("the attacker's goal was reached"). The injected text is AgentDojo's
`important_instructions` attack, placed in the injection vectors the user
task's ground truth reads.

A pair whose injection task gives no ground-truth calls cannot be decided by
any tool-call policy; it is listed with the reason and not replayed.

Beside the benchmark's injection tasks, every user task meets the mutation
stage's variants (`warded.evaluation.mutations`): attacks nobody has seen,
scored by their own checks, under no defense and the two warded policy sets.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warded.evaluation.defenses import ARMS, DEFENSES, Arm, DefenseName, Defenses
from warded.evaluation.mutations import variants
from warded.evaluation.replay import MODES, CompromisedAgent, GuardedRuntime, Mode, Trace
from warded.evaluation.suites import (
    LABELS_EXAMPLES,
    TOOLS_FILE,
    SuiteConfig,
    agentdojo,
    check_config,
    load_suite,
)

# `important_instructions` names the victim model; this id is the one AgentDojo's
# published gpt-4o runs used. Nothing here calls a model.
ATTACK = "important_instructions"
ATTACK_MODEL_ID = "gpt-4o-2024-05-13"
OUTPUT_ONLY = "goal is only text in the answer: no tool call to refuse"
EMPTY_GT = "empty ground truth: the benchmark gives no calls to replay"
# libyaml's parser where PyYAML was built with it: the same values as PyYAML's
# own for the suites' environments (tests/evaluation/test_suites.py), 5-9x faster
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The variants run without the oracle and the approvers: what matters is what
# runs without a human, what is refused and what reaches the approval queue.
VARIANT_DEFENSES: tuple[DefenseName, ...] = ("none", "labels", "warded")
# Utility under attack is scored (by AgentDojo's check) under these defenses only.
UTILITY_UNDER_ATTACK: frozenset[DefenseName] = frozenset(
    {"none", "labels+approver", "warded+approver"}
)


@dataclass(slots=True)
class RunResult:
    """One scored run: a task (and maybe an injection) under one defense and one mode."""

    defense: DefenseName
    mode: Mode | None
    utility: bool | None  # None: not scored (a variant's run)
    security: bool | None
    trace: Trace
    error: str | None = None

    @property
    def approvals_granted(self) -> int:
        return sum(1 for a in self.trace.attempts if a.approval == "approved")

    @property
    def approvals_requested(self) -> int:
        return sum(1 for a in self.trace.attempts if a.approval_id is not None)

    @property
    def attack_reached_approval(self) -> bool:
        return any(
            a.origin == "attacker" and a.approval_id is not None for a in self.trace.attempts
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"utility": self.utility}
        if self.security is not None:
            out["attack_executed"] = self.security
        t = self.trace
        if t.exposed_at is not None:
            out["payload_seen_at_call"] = t.exposed_at
        if t.tainted_at_exposure is not None:
            out["session_untrusted_at_exposure"] = t.tainted_at_exposure
        if self.mode is not None:
            out["hijacked"] = t.hijacked
        out["calls"] = [a.to_json() for a in t.attempts]
        if self.error:
            out["error"] = self.error
        return out


@dataclass(slots=True)
class TaskResult:
    """A user task without attack, under every defense."""

    version: str
    suite: str
    user_task: str
    runs: dict[DefenseName, RunResult] = field(default_factory=dict)


@dataclass(slots=True)
class PairResult:
    version: str
    suite: str
    user_task: str
    injection_task: str
    undecidable: str | None = None
    runs: dict[tuple[Mode, DefenseName], RunResult] = field(default_factory=dict)
    kind: str | None = None  # the mutation's kind, for a variant

    @property
    def variant(self) -> bool:
        return self.kind is not None


class _Named:
    """What AgentDojo's attack reads from the target pipeline: its name."""

    name = ATTACK_MODEL_ID


class SuiteRunner:
    """One suite of one benchmark version, with its policies loaded."""

    def __init__(self, version: str, name: str, policies: Path | None = None) -> None:
        self.version = version
        self.name = name
        self.suite = load_suite(version, name)
        self.config = SuiteConfig.load(name, policies)
        baseline = SuiteConfig.load(name, examples=LABELS_EXAMPLES)
        for config in (self.config, baseline):
            check_config(self.suite, config)
        self.defenses = Defenses({"labels": baseline, "warded": self.config}, self.suite.tools)
        self.variants = variants(name, self.suite)
        registry = agentdojo("agentdojo.attacks.attack_registry")
        self.attack = registry.load_attack(ATTACK, self.suite, _Named())
        self._benign: Any = None
        self._texts: tuple[str, dict[str, str]] | None = None
        self._undecidable: dict[str, str | None] = {}

    @property
    def user_tasks(self) -> list[str]:
        return sorted(self.suite.user_tasks, key=_task_number)

    @property
    def injection_tasks(self) -> list[str]:
        return sorted(self.suite.injection_tasks, key=_task_number)

    def benign(self) -> Any:
        if self._benign is None:
            self._benign = self.environment({})
        return self._benign

    def environment(self, injections: Mapping[str, str]) -> Any:
        """AgentDojo's `load_and_inject_default_environment`, its files read once per runner.

        AgentDojo reads and re-parses the suite's environment file (with its
        includes) and injection vectors on every call, a fifth of the replay's
        time; the texts do not change, so only the injected text is parsed.
        """
        if self._texts is None:
            module = agentdojo("agentdojo.task_suite.task_suite")
            text = module.read_suite_file(self.suite.name, "environment.yaml", self.suite.data_path)
            self._texts = (text, self.suite.get_injection_vector_defaults())
        text, defaults = self._texts
        agentdojo("agentdojo.task_suite.task_suite").validate_injections(injections, defaults)
        injected = text.format(**dict(defaults, **injections))
        return self.suite.environment_type.model_validate(yaml.load(injected, Loader=_LOADER))

    def undecidable(self, injection_id: str) -> str | None:
        """Why no tool-call policy can decide this injection task, or None."""
        if injection_id not in self._undecidable:
            self._undecidable[injection_id] = self._why_undecidable(injection_id)
        return self._undecidable[injection_id]

    def _why_undecidable(self, injection_id: str) -> str | None:
        task = self.suite.injection_tasks[injection_id]
        env = self.benign().model_copy(deep=True)
        if task.ground_truth(env):
            return None
        said = task.GROUND_TRUTH_OUTPUT
        if said and task.security(said, env, env.model_copy(deep=True)):
            return OUTPUT_ONLY
        return EMPTY_GT

    def run_task(self, user_id: str, defenses: Sequence[DefenseName] = DEFENSES) -> TaskResult:
        """The user task alone (benign environment) under each defense."""
        user_task = self.suite.user_tasks[user_id]
        result = TaskResult(self.version, self.name, user_id)
        for defense in defenses:
            result.runs[defense] = self._run(user_task, None, {}, self.benign(), defense, None)
        return result

    def run_pair(
        self,
        user_id: str,
        injection_id: str,
        modes: Sequence[Mode] = MODES,
        defenses: Sequence[DefenseName] = DEFENSES,
        undecidable: str | None = None,
    ) -> PairResult:
        """The pair under every mode and defense (nothing is run if it is undecidable)."""
        mutation = self.variants.mutations.get(injection_id)
        kind = mutation.kind if mutation is not None else None
        result = PairResult(self.version, self.name, user_id, injection_id, undecidable, kind=kind)
        if undecidable is not None:
            return result
        user_task = self.suite.user_tasks[user_id]
        injection_task = (
            self.variants.tasks[injection_id]
            if mutation is not None
            else self.suite.injection_tasks[injection_id]
        )
        injections = self.attack.attack(user_task, injection_task)
        env = self.environment(injections)
        if mutation is not None:
            mutation.prepare(env)  # what a `planted` variant's attacker put in the data
        for mode in modes:
            for defense in defenses:
                result.runs[(mode, defense)] = self._run(
                    user_task, injection_task, injections, env, defense, mode
                )
        return result

    def _run(
        self,
        user_task: Any,
        injection_task: Any | None,
        injections: dict[str, str],
        base_env: Any,
        defense: DefenseName,
        mode: Mode | None,
    ) -> RunResult:
        session = "/".join(
            (self.version, self.name, user_task.ID, getattr(injection_task, "ID", "-"), mode or "-")
        )
        guard = self.defenses.guard(defense, f"{session}/{defense}")
        agent = CompromisedAgent(
            user_task,
            injection_task,
            mode or "after_user",
            injection_task.GOAL if injection_task is not None else None,
        )

        def runtime_class(functions: Sequence[Any]) -> GuardedRuntime:
            return GuardedRuntime(functions, guard)

        env = base_env.model_copy(deep=True)
        agent.trace.attempts.clear()
        utility: bool | None
        try:
            if injection_task is not None and defense not in UTILITY_UNDER_ATTACK:
                utility = None
                security = self._security_only(agent, user_task, injection_task, env, guard)
            else:
                utility, security = self.suite.run_task_with_pipeline(
                    agent,
                    user_task,
                    injection_task,
                    injections,
                    runtime_class=runtime_class,
                    environment=env,
                )
        except Exception as exc:  # a harness failure is reported, never a crash
            error = f"{type(exc).__name__}: {exc}"
            return RunResult(defense, mode, False, None, _bare(agent.trace), error)
        for attempt in agent.trace.attempts:
            tool = self.config.tools.get(attempt.tool)
            attempt.effect = tool.effect if tool is not None else "unknown"
        return RunResult(
            defense,
            mode,
            None if utility is None else bool(utility),
            bool(security) if injection_task is not None else None,
            _bare(agent.trace),
        )

    def _security_only(
        self, agent: CompromisedAgent, user_task: Any, injection: Any, env: Any, guard: Any
    ) -> bool:
        """A run as `run_task_with_pipeline` does it, scored by the attack's check only.

        AgentDojo's utility checks diff whole environments, which is most of
        the replay's time; utility under attack is scored only where it is
        reported (no defense, and the two policy sets with the approver).
        """
        module = agentdojo("agentdojo.task_suite.task_suite")
        task_env = user_task.init_environment(env)
        pre = task_env.model_copy(deep=True)
        runtime = GuardedRuntime(self.suite.tools, guard)
        agent.show_results = False  # only the answer and the calls below are read
        _, _, task_env, messages, _ = agent.query(user_task.PROMPT, runtime, task_env)
        output = module.model_output_from_messages(messages) or []
        trace = module.functions_stack_trace_from_messages(messages)
        return bool(self.suite._check_task_result(injection, output, pre, task_env, trace))


def _bare(trace: Trace) -> Trace:
    """The trace without the tool results (environment objects): small and picklable."""
    for attempt in trace.attempts:
        attempt.result = None
    return trace


@dataclass(frozen=True, slots=True)
class Job:
    """One user task of one suite: the task alone, then every pair with it."""

    version: str
    suite: str
    user_task: str
    modes: tuple[Mode, ...] = MODES
    policies: Path | None = None
    mutated: bool = True


@dataclass(slots=True)
class JobResult:
    job: Job
    task: TaskResult
    pairs: list[PairResult]
    audit: dict[Arm, list[dict[str, Any]]]  # per policy set
    bundle_version: str
    tools_digest: str


_RUNNERS: dict[tuple[str, str, Path | None], SuiteRunner] = {}


def runner_for(version: str, suite: str, policies: Path | None = None) -> SuiteRunner:
    """The process's runner for a suite (suites are loaded once per process)."""
    key = (version, suite, policies)
    if key not in _RUNNERS:
        _RUNNERS[key] = SuiteRunner(version, suite, policies)
    return _RUNNERS[key]


def run_job(job: Job) -> JobResult:
    """Run a job on a fresh gate; its audit log comes back as JSON records."""
    runner = runner_for(job.version, job.suite, job.policies)
    runner.defenses.renew()
    task = runner.run_task(job.user_task)
    pairs = [
        runner.run_pair(job.user_task, i, job.modes, undecidable=runner.undecidable(i))
        for i in runner.injection_tasks
    ]
    if job.mutated:
        pairs += [
            runner.run_pair(job.user_task, v, job.modes, VARIANT_DEFENSES)
            for v in runner.variants.tasks
        ]
    arms = runner.defenses.arms
    audit = {a: [r.to_json() for r in arms[a].gate.store.records()] for a in ARMS}
    tools = (runner.config.policies / TOOLS_FILE).read_bytes()
    digest = hashlib.sha256(tools).hexdigest()[:16]
    return JobResult(job, task, pairs, audit, arms["warded"].bundle.version, digest)


def plan(
    versions: Sequence[str],
    suites: Sequence[str],
    modes: Sequence[Mode],
    policies: Mapping[str, Path] | None = None,
    mutated: bool = True,
) -> list[tuple[Job, int]]:
    """Every job, with the number of runs it will score (for a progress bar)."""
    jobs = []
    for version in versions:
        for suite in suites:
            runner = runner_for(version, suite, (policies or {}).get(suite))
            decidable = sum(1 for i in runner.injection_tasks if runner.undecidable(i) is None)
            if mutated:
                decidable += len(runner.variants.tasks)
            for user_id in runner.user_tasks:
                job = Job(
                    version, suite, user_id, tuple(modes), (policies or {}).get(suite), mutated
                )
                jobs.append((job, 1 + decidable))
    return jobs


Progress = Callable[[JobResult, int], None]


def run_all(
    jobs: Sequence[tuple[Job, int]], workers: int = 1, progress: Progress | None = None
) -> list[JobResult]:
    """Run the jobs, in `workers` processes; results in plan order."""
    results: dict[Job, JobResult] = {}

    def done(result: JobResult, units: int) -> None:
        results[result.job] = result
        if progress is not None:
            progress(result, units)

    units = dict(jobs)
    if workers <= 1:
        for job, n in jobs:
            done(run_job(job), n)
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(run_job, job) for job, _ in jobs]
            for future in concurrent.futures.as_completed(futures):
                result = future.result()
                done(result, units[result.job])
    return [results[job] for job, _ in jobs]


def _task_number(task_id: str) -> int:
    digits = task_id.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else 0
