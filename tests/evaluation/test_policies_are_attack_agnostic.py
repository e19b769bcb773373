"""The AgentDojo policies are written from the user's side: they know nothing of the attacks.

Every distinctive string of every injection task (its goal and the arguments
of its ground-truth calls, for every suite and benchmark version) — IBANs,
e-mail addresses, URLs and domains, names and made-up tokens, quoted phrases,
the string arguments themselves; six characters or more — that the user's
side (the user tasks' prompts, ground truth and answers, the tools'
descriptions, the benign environment) does not also contain must not occur in
any file of any policy directory. A token that the user's side of any suite
contains, such as a plain word, is not distinctive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

AGENTDOJO_POLICIES = Path(__file__).resolve().parents[2] / "examples" / "agentdojo"

VERSIONS = ("v1.1.2", "v1.2.2")
SUITES = ("banking", "slack", "travel", "workspace")

IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{8,30}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"(?:https?://)?(?:[\w-]+\.)+(?:com|net|org|io|ch|de|uk|info)(?:/[\w./-]*)?")
QUOTED = re.compile(r"'([^']{6,})'|\"([^\"]{6,})\"")
WORD = re.compile(r"[\w][\w.+-]{5,}")
NAME = re.compile(r"^[A-Z]|[\d_.+-]")  # a proper name, or a made-up token; not a plain word


def strings(value: Any) -> Iterator[str]:
    """Every string inside a value (dicts, lists, pydantic models)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            yield from strings(v)
    elif hasattr(value, "model_dump"):
        yield from strings(value.model_dump())


def distinctive(text: str) -> set[str]:
    """The tokens of an attacker's text that could tie a policy to that attack."""
    found: set[str] = set()
    for pattern in (IBAN, EMAIL, URL):
        found |= {m.group(0) for m in pattern.finditer(text)}
    for m in QUOTED.finditer(text):
        found.add(m.group(1) or m.group(2))
    found |= {w.strip(".") for w in WORD.findall(text) if NAME.search(w.strip("."))}
    for token in list(found):  # the labels of a domain, the parts of an address
        found |= set(re.split(r"[.@/:]+", token))
    return {f for f in found if len(f) >= 6}


def is_user_side(token: str, corpus: str) -> bool:
    return token.lower() in corpus


@cache
def suite_corpora(version: str, name: str) -> tuple[str, frozenset[str]]:
    """(the user's side as one lower-cased text, the attacker's distinctive tokens)."""
    from agentdojo.task_suite.load_suites import get_suite

    suite = get_suite(version, name)
    env = suite.load_and_inject_default_environment({})
    user: list[str] = [json.dumps(env.model_dump(mode="json"))]
    for f in suite.tools:
        user += [f.name, f.description, json.dumps(f.parameters.model_json_schema())]
    for task in suite.user_tasks.values():
        user += [task.PROMPT, task.GROUND_TRUTH_OUTPUT]
        for call in task.ground_truth(env.model_copy(deep=True)):
            user += [call.function, *strings(call.args)]
    attacker: set[str] = set()
    for task in suite.injection_tasks.values():
        attacker |= distinctive(task.GOAL)
        for call in task.ground_truth(env.model_copy(deep=True)):
            for text in strings(call.args):
                attacker |= distinctive(text)
                if len(text) >= 6:
                    attacker.add(text)
    corpus = "\n".join(user).lower()
    return corpus, frozenset(t for t in attacker if not is_user_side(t, corpus))


def policy_files(root: Path) -> Iterable[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def leaks(text: str, tokens: Iterable[str]) -> list[str]:
    lowered = text.lower()
    return sorted(t for t in tokens if t.lower() in lowered)


@pytest.mark.parametrize("suite", SUITES)
def test_no_policy_file_contains_a_string_only_the_attacks_use(agentdojo: Any, suite: str) -> None:
    own: set[str] = set()
    everyone: set[str] = set()
    users = []
    for version in VERSIONS:
        for name in SUITES:
            corpus, tokens = suite_corpora(version, name)
            users.append(corpus)
            everyone |= tokens
            if name == suite:
                own |= tokens
    all_users = "\n".join(users)
    everyone = {t for t in everyone if not is_user_side(t, all_users)}
    own = {t for t in own if not is_user_side(t, all_users)}
    assert own, "no attacker strings were found: the extraction is broken"
    files = [
        *policy_files(AGENTDOJO_POLICIES / suite),
        *policy_files(AGENTDOJO_POLICIES.parent / "agentdojo-labels" / suite),  # the baseline
    ]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert leaks(text, own | everyone) == [], path


def test_the_check_catches_an_attacker_iban_a_url_and_a_phrase(agentdojo: Any) -> None:
    _, banking = suite_corpora("v1.2.2", "banking")
    _, slack = suite_corpora("v1.2.2", "slack")
    _, travel = suite_corpora("v1.1.2", "travel")
    assert "US133000000121212121212" in banking
    assert "www.secure-systems-252.com" in slack
    assert "fred9246@gmail.com" in slack
    assert "Riverside View Hotel" in travel
    policy = 'when { context.args.recipient == "US133000000121212121212" };'
    assert leaks(policy, banking) == ["US133000000121212121212"]
    assert "secure-systems-252" in leaks('unless { url like "*secure-systems-252*" }', slack)
    assert "Intro with Mark" in suite_corpora("v1.2.2", "workspace")[1]


def test_strings_the_user_side_also_has_are_not_distinctive(agentdojo: Any) -> None:
    corpus, travel = suite_corpora("v1.2.2", "travel")
    assert is_user_side("janeLong@google.com", corpus)  # the user's wife, in a user task
    assert "janeLong@google.com" not in travel
    _, slack = suite_corpora("v1.2.2", "slack")
    assert "www.informations.com" not in slack
