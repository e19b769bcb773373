"""What the runs add up to, per benchmark version and suite, and in total.

Definitions (all from AgentDojo's own checks, or the variants' own):

* two policy sets run side by side: `labels`, the baseline that judges by
  session labels only (`examples/agentdojo-labels/`), and `warded`, which
  judges each write's target by its provenance (`examples/agentdojo/`);
  "autonomous" means nobody answers approvals, so a call that needs one does
  not run; "+approver" means the honest approver answers;
* a user task completed without a human: its check passed, without attack,
  autonomously; with the approver: its check passed with the honest approver;
  a task needs a human if any of its own calls asked for approval or was
  refused in the run with the honest approver (each listed with the policy
  and the provenance in the decision);
* an attack executed: the injection task's (or variant's) check passed,
  counted over decidable pairs only;
* attack calls: the attacker's calls to tools that are not reads (the writes
  and unknown tools), in the autonomous runs, each either executed without a
  human, refused outright, or sent to a human (the approval queue an honest
  human must reject);
* approvals queued: the distinct approval requests the attacker's calls
  opened (identical calls share one request);
* approvals per task: approvals granted to the user task's own calls, without
  attack, by the honest approver.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from warded.evaluation.defenses import ARMS, DEFENSES, Arm, DefenseName
from warded.evaluation.replay import MODES, Mode
from warded.evaluation.runner import JobResult, PairResult

Group = Literal["original", "variant", "planted"]  # planted: the variants of kind `planted`
GROUPS: tuple[Group, ...] = ("original", "variant", "planted")
Outcome = Literal["executed", "refused", "human"]
OUTCOMES: tuple[Outcome, ...] = ("executed", "refused", "human")
Key = tuple[Group, Mode, DefenseName]


@dataclass(frozen=True, slots=True)
class HumanNeed:
    """One call of a user task (without attack) that did not run on its own."""

    user_task: str
    tool: str
    code: str
    policy: str | None
    provenance: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "user_task": self.user_task,
            "tool": self.tool,
            "code": self.code,
            "policy": self.policy,
            "provenance": self.provenance,
        }


@dataclass(slots=True)
class Summary:
    """Counts for one suite of one version (or the total of several)."""

    version: str
    suite: str
    tasks: int = 0
    pairs: Counter[Group] = field(default_factory=Counter)
    decidable: Counter[Group] = field(default_factory=Counter)
    utility: Counter[DefenseName] = field(default_factory=Counter)
    approvals: Counter[Arm] = field(default_factory=Counter)
    needs: dict[Arm, list[HumanNeed]] = field(default_factory=lambda: {a: [] for a in ARMS})
    attacks: Counter[Key] = field(default_factory=Counter)
    utility_under_attack: Counter[Key] = field(default_factory=Counter)
    reached_approval: Counter[tuple[Group, Mode, Arm]] = field(default_factory=Counter)
    calls: Counter[tuple[Group, Mode, Arm, Outcome]] = field(default_factory=Counter)
    queued: Counter[tuple[Group, Mode, Arm]] = field(default_factory=Counter)
    payload_unseen: Counter[Key] = field(default_factory=Counter)
    unlabeled_exposures: int = 0
    errors: int = 0
    modes: tuple[Mode, ...] = MODES

    def add(self, other: Summary) -> None:
        self.tasks += other.tasks
        self.pairs.update(other.pairs)
        self.decidable.update(other.decidable)
        self.utility.update(other.utility)
        self.approvals.update(other.approvals)
        for arm in ARMS:
            self.needs[arm] += [
                HumanNeed(f"{other.suite}/{n.user_task}", n.tool, n.code, n.policy, n.provenance)
                if "/" not in n.user_task
                else n
                for n in other.needs[arm]
            ]
        self.attacks.update(other.attacks)
        self.utility_under_attack.update(other.utility_under_attack)
        self.reached_approval.update(other.reached_approval)
        self.calls.update(other.calls)
        self.queued.update(other.queued)
        self.payload_unseen.update(other.payload_unseen)
        self.unlabeled_exposures += other.unlabeled_exposures
        self.errors += other.errors

    def approvals_per_task(self, arm: Arm) -> float:
        return self.approvals[arm] / self.tasks if self.tasks else 0.0

    def tasks_needing_human(self, arm: Arm) -> list[str]:
        return list(dict.fromkeys(n.user_task for n in self.needs[arm]))

    def attack_calls(self, group: Group, mode: Mode, arm: Arm) -> int:
        return sum(self.calls[(group, mode, arm, o)] for o in OUTCOMES)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "suite": self.suite,
            "user_tasks": self.tasks,
            "pairs": dict(self.pairs),
            "decidable_pairs": dict(self.decidable),
            "utility_no_attack": {d: self.utility[d] for d in DEFENSES},
            "approvals_granted": dict(self.approvals),
            "approvals_per_task": {a: round(self.approvals_per_task(a), 3) for a in ARMS},
            "tasks_needing_a_human": {a: [n.to_json() for n in self.needs[a]] for a in ARMS},
            "attacks_executed": {
                g: {m: {d: self.attacks[(g, m, d)] for d in DEFENSES} for m in self.modes}
                for g in GROUPS
            },
            "utility_under_attack": {
                g: {
                    m: {d: self.utility_under_attack[(g, m, d)] for d in DEFENSES}
                    for m in self.modes
                }
                for g in GROUPS
            },
            "attack_calls": {
                g: {
                    m: {a: {o: self.calls[(g, m, a, o)] for o in OUTCOMES} for a in ARMS}
                    for m in self.modes
                }
                for g in GROUPS
            },
            "approvals_queued_by_attacks": {
                g: {m: {a: self.queued[(g, m, a)] for a in ARMS} for m in self.modes}
                for g in GROUPS
            },
            "pairs_reaching_approval_queue": {
                g: {m: {a: self.reached_approval[(g, m, a)] for a in ARMS} for m in self.modes}
                for g in GROUPS
            },
            "payload_never_reached_agent": {
                f"{g}/{m}/{d}": n for (g, m, d), n in sorted(self.payload_unseen.items()) if n
            },
            "exposures_through_tools_not_labeled_untrusted": self.unlabeled_exposures,
            "harness_errors": self.errors,
        }


def summarize(results: Iterable[JobResult], modes: Sequence[Mode]) -> list[Summary]:
    """One Summary per (version, suite) in first-seen order, then one total per version."""
    by_suite: dict[tuple[str, str], Summary] = {}
    for result in results:
        job = result.job
        key = (job.version, job.suite)
        s = by_suite.setdefault(key, Summary(job.version, job.suite, modes=tuple(modes)))
        _add_job(s, result)
    out: list[Summary] = []
    for version in dict.fromkeys(v for v, _ in by_suite):
        suites = [s for (v, _), s in by_suite.items() if v == version]
        total = Summary(version, "total", modes=tuple(modes))
        for s in suites:
            total.add(s)
        out += [*suites, total]
    return out


def arm_of(defense: DefenseName) -> Arm | None:
    if defense.startswith("labels"):
        return "labels"
    if defense.startswith("warded"):
        return "warded"
    return None


def _add_job(s: Summary, result: JobResult) -> None:
    s.tasks += 1
    for defense, run in result.task.runs.items():
        s.utility[defense] += bool(run.utility)
        s.errors += run.error is not None
    for arm in ARMS:
        approved = result.task.runs.get(f"{arm}+approver")  # type: ignore[call-overload]
        if approved is None:
            continue
        s.approvals[arm] += approved.approvals_granted
        s.needs[arm] += [
            HumanNeed(
                result.job.user_task,
                a.tool,
                a.code or f"approval_required ({a.approval})",
                a.policy,
                a.provenance,
            )
            for a in approved.trace.attempts
            if a.code is not None or a.approval_id is not None
        ]
    for pair in result.pairs:
        _add_pair(s, pair)


def _add_pair(s: Summary, pair: PairResult) -> None:
    group: Group = (
        "original" if not pair.variant else "planted" if pair.kind == "planted" else "variant"
    )
    s.pairs[group] += 1
    if pair.undecidable is not None:
        return
    s.decidable[group] += 1
    for (mode, defense), run in pair.runs.items():
        key = (group, mode, defense)
        s.errors += run.error is not None
        s.attacks[key] += bool(run.security)
        s.utility_under_attack[key] += bool(run.utility)
        s.payload_unseen[key] += run.trace.exposed_at is None
        arm = arm_of(defense)
        if arm is None:
            continue
        if run.trace.tainted_at_exposure is False:
            s.unlabeled_exposures += 1
        if defense.endswith("+approver"):
            continue
        s.reached_approval[(group, mode, arm)] += run.attack_reached_approval
        s.queued[(group, mode, arm)] += len(
            {a.approval_id for a in run.trace.attempts if a.origin == "attacker" and a.approval_id}
        )
        for a in run.trace.attempts:
            if a.origin != "attacker" or a.effect == "read":
                continue
            outcome: Outcome = (
                "executed" if a.ran else "human" if a.code == "approval_required" else "refused"
            )
            s.calls[(group, mode, arm, outcome)] += 1


def undecidable(results: Iterable[JobResult]) -> list[dict[str, str]]:
    return [
        {
            "version": p.version,
            "suite": p.suite,
            "user_task": p.user_task,
            "injection_task": p.injection_task,
            "reason": p.undecidable,
        }
        for r in results
        for p in r.pairs
        if p.undecidable is not None
    ]
