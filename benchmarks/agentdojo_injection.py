"""InjectionScanner on AgentDojo's tool outputs, as the gate receives them.

Run from the repository root (needs the `eval` extra: agentdojo 0.1.35):

    .venv/bin/python benchmarks/agentdojo_injection.py [--version v1.2.2]

Recall: for every suite, every (user task, injection task) pair and each of
AgentDojo's six attack renderings (important_instructions, tool_knowledge,
ignore_previous, system_message, injecagent, direct), the user task's
ground-truth calls are run on the suite's environment with every injection
vector it reads set to a unique marker; each result becomes its canonical
JSON view (`warded.outputs.view`, as the gate builds it) and the markers are
replaced by the rendering's text for the pair. A run counts as detected when
one of its results that carries the injection gets an injection finding
(`scan_value`, default threshold). Each run is scanned twice: by
`InjectionScanner()`, and by `InjectionScanner().for_tools(<the suite's tool
names>)`, which is what a gate with the suite's tools registered scans with
(`Gate._tool_scanners`). The marker
stands in for AgentDojo's own placement of the text in its YAML environment,
which differs only in whitespace.

False positives: every result of every user task's ground-truth calls on the
benign environment, and every string of the benign environment itself (the
e-mails, files, messages, pages and reviews any tool could return), per
suite. No attack text is copied into this repository: they are rendered by
the installed agentdojo at run time.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections import Counter
from typing import Any

from warded.outputs import view
from warded.scanners import InjectionScanner, scan_value

ATTACKS = (
    "important_instructions",
    "tool_knowledge",
    "ignore_previous",
    "system_message",
    "injecagent",
    "direct",
)
SUITES = ("banking", "slack", "travel", "workspace")
MODEL_ID = "gpt-4o-2024-05-13"  # AgentDojo's attacks name the victim model; none is called


class _Named:
    name = MODEL_ID


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _replace(value: Any, texts: dict[str, str]) -> Any:
    if isinstance(value, str):
        for marker, text in texts.items():
            if marker in value:
                value = value.replace(marker, text)
        return value
    if isinstance(value, dict):
        return {k: _replace(v, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, texts) for v in value]
    return value


def _results(suite: Any, user_task: Any, injections: dict[str, str]) -> list[Any]:
    from agentdojo.functions_runtime import FunctionsRuntime

    env = suite.load_and_inject_default_environment(injections)
    env = user_task.init_environment(env)
    runtime = FunctionsRuntime(suite.tools)
    out = []
    for call in user_task.ground_truth(env.model_copy(deep=True)):
        result, error = runtime.run_function(env, call.function, dict(call.args))
        if error is None:
            out.append(view(result))
    return out


def measure(version: str) -> None:
    from agentdojo.attacks.attack_registry import load_attack
    from agentdojo.task_suite.load_suites import get_suite

    plain = InjectionScanner()
    flagged_texts: list[tuple[str, str]] = []
    missed_examples: dict[str, str] = {}
    print(f"AgentDojo {version}, InjectionScanner threshold {plain.threshold}\n")
    print("| suite | attack | runs | detected | recall | as the gate (tools) | recall |")
    print("|---|---|---:|---:|---:|---:|---:|")
    totals: Counter[str] = Counter()
    benign_rows = []
    for name in SUITES:
        suite = get_suite(version, name)
        with_tools = plain.for_tools(f.name for f in suite.tools)  # as the gate tells it
        scanners = {"": plain, "tools:": with_tools}
        attacks = {a: load_attack(a, suite, _Named()) for a in ATTACKS}
        for attack in attacks.values():
            attack.get_injection_candidates = functools.cache(attack.get_injection_candidates)
        defaults = suite.get_injection_vector_defaults()
        markers = {v: f"\u27e6{v}\u27e7" for v in defaults}
        # benign: ground-truth results on the default environment, and the environment itself
        benign_results = 0
        benign_flagged = 0
        for user_task in suite.user_tasks.values():
            for result in _results(suite, user_task, {}):
                benign_results += 1
                if any(scan_value([s], result) for s in scanners.values()):
                    benign_flagged += 1
                    flagged_texts.append((name, str(result)[:160]))
        env_strings = _strings(view(suite.load_and_inject_default_environment({})))
        env_flagged = [t for t in env_strings if plain.scan(t) or with_tools.scan(t)]
        flagged_texts.extend((name, s[:160]) for s in env_flagged)
        benign_rows.append(
            (name, benign_results, benign_flagged, len(env_strings), len(env_flagged))
        )
        # attacks: results with markers once per user task, renderings substituted per pair
        for attack_name, attack in attacks.items():
            runs = 0
            detected: Counter[str] = Counter()
            for user_task in suite.user_tasks.values():
                vectors = attack.get_injection_candidates(user_task)
                if not vectors:
                    continue
                marked = _results(suite, user_task, {v: markers[v] for v in vectors})
                for injection_task in suite.injection_tasks.values():
                    texts = attack.attack(user_task, injection_task)
                    filled = {markers[v]: t for v, t in texts.items()}
                    carrying = [
                        _replace(r, filled)
                        for r in marked
                        if any(m in s for s in _strings(r) for m in filled)
                    ]
                    if not carrying:
                        continue
                    runs += 1
                    for key, scanner in scanners.items():
                        if any(scan_value([scanner], r) for r in carrying):
                            detected[key] += 1
                        elif not key:
                            missed_examples.setdefault(
                                attack_name, next(iter(texts.values()))[:200]
                            )
            for key in scanners:
                totals[f"{key}{attack_name}:runs"] += runs
                totals[f"{key}{attack_name}:detected"] += detected[key]
                totals[f"{key}{name}:runs"] += runs
                totals[f"{key}{name}:detected"] += detected[key]
                totals[f"{key}{name}/{attack_name}:runs"] += runs
                totals[f"{key}{name}/{attack_name}:detected"] += detected[key]
            a, b = detected[""], detected["tools:"]
            print(
                f"| {name} | {attack_name} | {runs} | {a} | {_rate(a, runs)} | {b} "
                f"| {_rate(b, runs)} |",
                flush=True,
            )
    for key, title in (
        ("", "InjectionScanner()"),
        ("tools:", "InjectionScanner().for_tools(...), as the gate scans"),
    ):
        print(f"\n{title}: rendering x suite\n")
        print("| rendering | " + " | ".join(SUITES) + " | all suites |")
        print("|---|" + "---:|" * (len(SUITES) + 1))
        for a in (*ATTACKS, ""):
            cells = []
            for suite_name in (*SUITES, ""):
                cell = f"{suite_name}/{a}" if suite_name and a else suite_name or a
                if cell:
                    r, d = totals[f"{key}{cell}:runs"], totals[f"{key}{cell}:detected"]
                else:
                    r = sum(totals[f"{key}{x}:runs"] for x in ATTACKS)
                    d = sum(totals[f"{key}{x}:detected"] for x in ATTACKS)
                cells.append(f"{d}/{r} ({_rate(d, r)})")
            print(f"| {a or '**all six**'} | " + " | ".join(cells) + " |")
    print("\n| suite | benign results | flagged | environment strings | flagged |")
    print("|---|---:|---:|---:|---:|")
    for row in benign_rows:
        print("| {} | {} | {} | {} | {} |".format(*row))
    for name, text in flagged_texts[:20]:
        print(f"- benign flagged [{name}] {text!r}")
    for attack_name, text in missed_examples.items():
        print(f"- missed [{attack_name}] e.g. {text!r}")


def _rate(d: int, r: int) -> str:
    return f"{d / r:.1%}" if r else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="v1.2.2")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}")
    started = time.perf_counter()
    measure(args.version)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
