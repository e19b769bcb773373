"""What the runs add up to, per benchmark version and suite, and in total.

Definitions (all from AgentDojo's own checks):

* utility: the user task's check passed, without attack (benign environment);
* warded autonomous: no approver answers, so a call that needs approval does
  not run; warded + approver: the honest approver answers;
* attack executed: the injection task's check passed (the attacker's goal
  was reached), counted over decidable pairs only;
* reached the approval queue: some call of the attacker's needed approval;
* approvals per task: approvals granted to the user task's own calls, without
  attack, by the honest approver.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from warded.evaluation.defenses import DEFENSES, DefenseName
from warded.evaluation.replay import MODES, Mode
from warded.evaluation.runner import JobResult

Key = tuple[Mode, DefenseName]


@dataclass(slots=True)
class Summary:
    """Counts for one suite of one version (or the total of several)."""

    version: str
    suite: str
    tasks: int = 0
    pairs: int = 0
    decidable: int = 0
    utility: Counter[DefenseName] = field(default_factory=Counter)
    approvals: int = 0
    tasks_needing_approval: list[str] = field(default_factory=list)
    attacks: Counter[Key] = field(default_factory=Counter)
    utility_under_attack: Counter[Key] = field(default_factory=Counter)
    reached_approval: Counter[Mode] = field(default_factory=Counter)
    payload_unseen: Counter[Key] = field(default_factory=Counter)
    unlabeled_exposures: int = 0
    errors: int = 0
    modes: tuple[Mode, ...] = MODES

    def add(self, other: Summary) -> None:
        self.tasks += other.tasks
        self.pairs += other.pairs
        self.decidable += other.decidable
        self.utility.update(other.utility)
        self.approvals += other.approvals
        self.tasks_needing_approval += [
            f"{other.suite}/{t}" if "/" not in t else t for t in other.tasks_needing_approval
        ]
        self.attacks.update(other.attacks)
        self.utility_under_attack.update(other.utility_under_attack)
        self.reached_approval.update(other.reached_approval)
        self.payload_unseen.update(other.payload_unseen)
        self.unlabeled_exposures += other.unlabeled_exposures
        self.errors += other.errors

    @property
    def approvals_per_task(self) -> float:
        return self.approvals / self.tasks if self.tasks else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "suite": self.suite,
            "user_tasks": self.tasks,
            "pairs": self.pairs,
            "decidable_pairs": self.decidable,
            "utility_no_attack": {d: self.utility[d] for d in DEFENSES},
            "approvals_granted": self.approvals,
            "approvals_per_task": round(self.approvals_per_task, 3),
            "tasks_needing_approval": self.tasks_needing_approval,
            "attacks_executed": {
                m: {d: self.attacks[(m, d)] for d in DEFENSES} for m in self.modes
            },
            "utility_under_attack": {
                m: {d: self.utility_under_attack[(m, d)] for d in DEFENSES} for m in self.modes
            },
            "attacks_reaching_approval_queue": {m: self.reached_approval[m] for m in self.modes},
            "payload_never_reached_agent": {
                f"{m}/{d}": self.payload_unseen[(m, d)] for m in self.modes for d in DEFENSES
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


def _add_job(s: Summary, result: JobResult) -> None:
    s.tasks += 1
    for defense, run in result.task.runs.items():
        s.utility[defense] += run.utility
        s.errors += run.error is not None
    approver_run = result.task.runs.get("warded+approver")
    if approver_run is not None:
        s.approvals += approver_run.approvals_granted
        if approver_run.approvals_requested:
            s.tasks_needing_approval.append(result.job.user_task)
    for pair in result.pairs:
        s.pairs += 1
        if pair.undecidable is not None:
            continue
        s.decidable += 1
        reached: set[Mode] = set()
        for (mode, defense), run in pair.runs.items():
            s.errors += run.error is not None
            s.attacks[(mode, defense)] += bool(run.security)
            s.utility_under_attack[(mode, defense)] += run.utility
            s.payload_unseen[(mode, defense)] += run.trace.exposed_at is None
            if defense.startswith("warded"):
                if run.attack_reached_approval:
                    reached.add(mode)
                if run.trace.tainted_at_exposure is False:
                    s.unlabeled_exposures += 1
        for mode in reached:
            s.reached_approval[mode] += 1


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
