"""The policy test-case corpus (tests/cases/*.yaml), run through the library and the CLI.

The library run calls `gate.call` with a recording tool, so it checks what
really executes and what the audit log says; the CLI run (`warded test`) uses
the gate's dry run. Both must agree with every case.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from support import session_with
from warded import Refusal
from warded.cli import cli
from warded.cli.cases import Case, CaseFile, load_cases

CASES = Path(__file__).resolve().parent / "cases"
FILES = sorted(CASES.glob("*.yaml"))


def _every_case() -> Iterator[Any]:
    for path in FILES:
        case_file = load_cases(path)
        for case in case_file.cases:
            marks = [pytest.mark.requirement(case.requirement)] if case.requirement else []
            yield pytest.param(case_file, case, id=f"{path.stem}: {case.name}", marks=marks)


@pytest.mark.parametrize(("case_file", "case"), list(_every_case()))
def test_the_gate_answers_the_case_as_expected(case_file: CaseFile, case: Case) -> None:
    ran: list[dict[str, Any]] = []

    def tool(**kwargs: Any) -> str:
        ran.append(kwargs)
        return "ran"

    gate, _ = case_file.gate(case, executor=tool)
    result = gate.call(case.principal, case.tool, case.args, session_with(gate, case.labels))
    decision = next(r.body for r in gate.store.records() if r.body["kind"] == "decision")
    if case.expect == "allow":
        assert result == "ran"
        assert len(ran) == 1
        assert decision["decision"] == "allow"
        policies = decision["policies"]
    else:
        assert isinstance(result, Refusal)
        assert result.code == case.expect
        assert ran == []
        assert (decision["decision"], decision["code"]) == ("deny", case.expect)
        cited = [result.policy] if result.policy else []
        policies = cited if case.expect == "not_permitted" else decision["policies"]
    if case.policies is not None:
        assert sorted(policies) == sorted(case.policies)
    if case.errors is not None:
        assert bool(decision["reasons"]) is case.errors


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_warded_test_passes_every_case_in_the_file(path: Path) -> None:
    result = CliRunner().invoke(cli, ["test", str(path)])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout


def test_the_corpus_covers_every_answer_a_gate_without_obligation_stores_gives() -> None:
    expected = {case.expect for path in FILES for case in load_cases(path).cases}
    want = {"allow", "unknown_tool", "invalid_arguments", "not_permitted", "approval_required"}
    assert want <= expected
