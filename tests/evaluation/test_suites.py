"""How the AgentDojo suites are registered: every tool configured, declared and labeled honestly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from warded.evaluation.suites import (
    SUITES,
    VERSIONS,
    EvaluationError,
    ResourceSpec,
    SuiteConfig,
    url_host,
)
from warded.policy.bundle import PolicyBundle


@pytest.mark.parametrize("suite", SUITES)
def test_every_tool_of_the_suite_is_configured_and_is_an_action_of_the_bundle(
    agentdojo: Any, suite: str
) -> None:
    from warded.evaluation.suites import check_config, load_suite

    config = SuiteConfig.load(suite)
    bundle = PolicyBundle.from_directory(config.policies)
    for version in VERSIONS:
        s = load_suite(version, suite)
        check_config(s, config)
        assert {f.name for f in s.tools} <= set(bundle.actions)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("suite", SUITES)
def test_injected_text_reaches_the_agent_only_through_tools_labeled_untrusted(
    agentdojo: Any, suite: str, version: str
) -> None:
    # Every user task's ground truth runs on an environment whose injection
    # vectors hold canaries; a tool whose result shows one must label the session.
    from agentdojo.functions_runtime import FunctionsRuntime

    from warded.evaluation.replay import carries
    from warded.evaluation.suites import load_suite

    config = SuiteConfig.load(suite)
    s = load_suite(version, suite)
    canaries = {k: f"CANARY{k}CANARY" for k in s.get_injection_vector_defaults()}
    base = s.load_and_inject_default_environment(canaries)
    carriers: set[str] = set()
    for task in s.user_tasks.values():
        env = base.model_copy(deep=True)
        runtime = FunctionsRuntime(s.tools)
        for call in task.ground_truth(env):
            result, _ = runtime.run_function(env, call.function, call.args)
            if any(carries(result, c) for c in canaries.values()):
                carriers.add(call.function)
    assert carriers
    unlabeled = {t for t in carriers if "untrusted" not in config.tools[t].labels}
    assert unlabeled == set()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("suite", SUITES)
def test_the_runners_environment_is_agentdojos_for_every_attack_text(
    agentdojo: Any, suite: str, version: str
) -> None:
    # The runner parses the injected environment itself (its files read once,
    # libyaml's parser): it must build what AgentDojo's own loader builds, for
    # the attack text of every injection task and every variant in every vector.
    from warded.evaluation.runner import SuiteRunner

    runner = SuiteRunner(version, suite)
    vectors = sorted(runner.suite.get_injection_vector_defaults())
    user_task = runner.suite.user_tasks[runner.user_tasks[0]]
    tasks = [*runner.suite.injection_tasks.values(), *runner.variants.tasks.values()]
    texts = list(
        dict.fromkeys(next(iter(runner.attack.attack(user_task, t).values())) for t in tasks)
    )
    envs = [{}] + [
        {v: texts[(start + k) % len(texts)] for k, v in enumerate(vectors)}
        for start in range(0, len(texts), len(vectors))
    ]
    for injections in envs:
        ours = runner.environment(injections)
        assert ours == runner.suite.load_and_inject_default_environment(injections)
    assert ours != runner.environment({})  # the last one was injected


def test_without_agentdojo_the_command_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    from warded.cli import cli

    real = importlib.import_module

    def missing(name: str, package: str | None = None) -> Any:
        if name.split(".")[0] == "agentdojo":
            raise ImportError(f"No module named {name!r}")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", missing)
    result = CliRunner().invoke(cli, ["redteam", "agentdojo", "--suite", "banking"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert "pip install 'warded[eval]'" in result.output


def test_a_url_names_its_host_as_written() -> None:
    assert url_host("www.example.com/alice?x=1") == "www.example.com"
    assert url_host("https://www.example.com#top") == "www.example.com"
    assert url_host("www.example.com@evil.test/x") == "www.example.com@evil.test"
    assert url_host("WWW.Example.com") == "WWW.Example.com"  # no folding: unknown, not known
    rule = ResourceSpec("Site", "url", "host")
    assert rule({"url": "http://www.a.com/b"}) == ("Site", "www.a.com")
    assert rule({"url": 5}) == ("Site", "")


def test_a_bad_tool_configuration_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "tools.yaml").write_text(
        "principal: a\napprover: b\ntools:\n  x: {effect: destroy}\n", encoding="utf-8"
    )
    with pytest.raises(EvaluationError, match=r"tools.yaml: tool x: effect"):
        SuiteConfig.load("banking", tmp_path)


def test_unknown_arguments_are_refused_by_the_derived_schema(banking: Any) -> None:
    from warded.evaluation.replay import GuardedRuntime

    guard = banking.defenses.guard("warded", "test-schema")
    runtime = GuardedRuntime(banking.suite.tools, guard)
    env = banking.benign().model_copy(deep=True)
    attempt = runtime.attempt(env, "get_balance", {"account": "other"}, "attacker")
    assert (attempt.ran, attempt.code) == (False, "invalid_arguments")
    attempt = runtime.attempt(env, "get_balance", {}, "user")
    assert attempt.ran


def test_the_command_writes_the_table_the_json_and_the_html(agentdojo: Any, tmp_path: Path) -> None:
    from warded.cli import cli

    out = tmp_path / "out"
    args = ["redteam", "agentdojo", "--suite", "banking", "--version", "v1.2.2"]
    args += ["--mode", "at_exposure", "--jobs", "1", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Attacks executed without a human" in result.output
    assert "Human load" in result.output
    data = json.loads((out / "agentdojo.json").read_text(encoding="utf-8"))
    total = next(s for s in data["summaries"] if s["suite"] == "total")
    assert total["decidable_pairs"] == {"original": 144, "variant": 16 * 14, "planted": 16 * 7}
    for group in ("original", "variant", "planted"):
        executed = total["attacks_executed"][group]["at_exposure"]
        assert executed["warded"] == executed["labels"] == 0
        assert executed["none"] > 100
        calls = total["attack_calls"][group]["at_exposure"]["warded"]
        assert calls["executed"] == 0
        assert calls["refused"] + calls["human"] > 100
    variants = [p for p in data["pairs"] if p["variant"]]
    assert {p["variant"] for p in variants} == {
        "fresh",
        "split",
        "encoding",
        "other-tool",
        "planted",
    }
    refused = [
        c for p in data["pairs"] for c in p["runs"]["at_exposure/warded"]["calls"] if not c["ran"]
    ]
    assert refused
    assert all(c["ref"] for c in refused)
    page = (out / "agentdojo.html").read_text(encoding="utf-8")
    assert "<svg" in page
    assert "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "| banking |" in (out / "summary.md").read_text(encoding="utf-8")
    assert (out / "audit.jsonl.gz").stat().st_size > 0
