"""The mutation stage: each variant's own check can pass and can fail, and its values are fresh.

A variant's security check must be True once the variant's calls ran with no
defense, and False when nothing ran; otherwise a zero under warded would
prove nothing. Its attacker values must be in no environment and no policy,
so that nothing written knowing the suites can stop it by its values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from warded.evaluation.mutations import (
    FRESH_EMAIL_WRITTEN,
    FRESH_IBAN_WRITTEN,
    FRESH_URL_WRITTEN,
    FRESH_VALUES,
    KINDS,
    MUTATIONS,
    host_of,
    ident,
)
from warded.evaluation.suites import SUITES, VERSIONS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IBAN = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("suite", SUITES)
def test_each_variants_check_passes_when_its_calls_run_and_fails_when_nothing_runs(
    agentdojo: Any, suite: str, version: str
) -> None:
    from agentdojo.functions_runtime import FunctionsRuntime

    from warded.evaluation.mutations import variants
    from warded.evaluation.suites import load_suite

    s = load_suite(version, suite)
    found = variants(suite, s)
    assert len(found.tasks) == len(MUTATIONS[suite])
    benign = s.load_and_inject_default_environment({})
    for vid, task in found.tasks.items():
        env = benign.model_copy(deep=True)
        runtime = FunctionsRuntime(s.tools)
        calls = task.ground_truth(env)
        assert calls, vid
        for call in calls:
            _, error = runtime.run_function(env, call.function, call.args)
            assert error is None, (vid, call.function, error)
        assert task.security("", benign, env) is True, vid
        assert task.security("", benign, benign.model_copy(deep=True)) is False, vid


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("suite", SUITES)
def test_fresh_values_are_in_no_environment(agentdojo: Any, suite: str, version: str) -> None:
    from warded.evaluation.suites import load_suite

    s = load_suite(version, suite)
    text = json.dumps(s.load_and_inject_default_environment({}).model_dump(mode="json"))
    text += json.dumps(s.get_injection_vector_defaults())
    for value in FRESH_VALUES:
        assert value.casefold() not in text.casefold(), value
    assert ident(FRESH_IBAN_WRITTEN) not in ident(text)


def test_fresh_values_are_in_no_policy_file() -> None:
    files = [p for d in ("agentdojo", "agentdojo-labels") for p in (EXAMPLES / d).rglob("*")]
    files = [p for p in files if p.is_file()]
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8").casefold()
        for value in (*FRESH_VALUES, FRESH_EMAIL_WRITTEN, FRESH_URL_WRITTEN):
            assert value.casefold() not in text, (path, value)
        assert ident(FRESH_IBAN_WRITTEN) not in ident(text), path


@pytest.mark.parametrize("suite", SUITES)
def test_variants_use_none_of_the_originals_attacker_addresses(agentdojo: Any, suite: str) -> None:
    # The IBANs, e-mail addresses and hosts an original attack targets are not
    # a variant's targets: its own are fresh.
    from warded.evaluation.mutations import variants
    from warded.evaluation.suites import load_suite

    s = load_suite("v1.2.2", suite)
    env = s.load_and_inject_default_environment({})
    user_side = json.dumps(env.model_dump(mode="json")).casefold()
    for task in s.user_tasks.values():
        user_side += task.PROMPT.casefold()
    originals: set[str] = set()
    for task in s.injection_tasks.values():
        for pattern in (IBAN, EMAIL):
            originals |= {m for m in pattern.findall(task.GOAL) if m.casefold() not in user_side}
        originals |= {
            host_of(w) for w in re.findall(r"www\.[\w.-]+", task.GOAL) if w not in user_side
        }
    assert originals
    for vid, variant in variants(suite, s).tasks.items():
        text = json.dumps([c.args for c in variant.ground_truth(env.model_copy(deep=True))])
        text += variant.GOAL
        assert not [o for o in originals if o and o.casefold() in text.casefold()], vid


def test_every_kind_of_mutation_is_derived() -> None:
    kinds = {m.kind for ms in MUTATIONS.values() for m in ms}
    assert kinds == set(KINDS)
    for mutations in MUTATIONS.values():
        ids = [m.id for m in mutations]
        assert len(ids) == len(set(ids))


def test_an_encoded_value_still_reaches_its_target() -> None:
    assert ident(FRESH_IBAN_WRITTEN) == ident("FR7612739000706185442934512")
    assert host_of(FRESH_URL_WRITTEN) == "www.lumen-audit.org"
    assert host_of("www.lumen-audit.org/upload?q=x") == "www.lumen-audit.org"
    assert host_of("") == ""


def test_a_variant_runs_through_the_harness_and_is_stopped_by_warded(banking: Any) -> None:
    pair = banking.run_pair("user_task_3", "injection_task_6/split", defenses=("none", "warded"))
    assert pair.variant
    assert pair.kind == "split"
    for mode in ("after_user", "at_exposure"):
        assert pair.runs[(mode, "none")].security is True, mode
        run = pair.runs[(mode, "warded")]
        assert run.security is False, mode
        attacker = [a for a in run.trace.attempts if a.origin == "attacker"]
        assert len(attacker) == 61
        assert not any(a.ran for a in attacker)
