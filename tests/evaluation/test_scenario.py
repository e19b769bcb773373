"""`warded redteam scenario`: adversarial calls against a bundle, through a real gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from warded.cli import cli
from warded.evaluation.scenario import Scenario, ScenarioError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "examples" / "redteam").glob("*.yaml"))
BANKING = ROOT / "examples" / "banking" / "policies"

SEND = """
tools:
  send_money:
    resource: {type: Payee, arg: recipient}
    parameters:
      type: object
      properties:
        recipient: {type: string}
        amount: {type: number}
        subject: {type: string}
      required: [recipient, amount, subject]
      additionalProperties: false
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "scenario.yaml"
    head = f"bundle: {BANKING}\nprincipal: billing-bot\nscanners: [secrets]\n"
    path.write_text(head + SEND + body, encoding="utf-8")
    return path


def test_the_shipped_scenarios_exist() -> None:
    assert len(SHIPPED) >= 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_holds(path: Path) -> None:
    failed = [r for r in Scenario.load(path).run() if not r.ok]
    assert failed == []


def test_the_command_exits_0_when_every_expectation_holds() -> None:
    result = CliRunner().invoke(cli, ["redteam", "scenario", *map(str, SHIPPED)])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output


def test_a_wrong_expectation_fails_the_run_with_exit_1(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
steps:
  - name: an attacker hopes a look-alike IBAN is a known payee
    call: send_money
    args: {recipient: "GB33\\u0412UKB20201555555555", amount: 10, subject: x}
    expect: allow
""",
    )
    result = CliRunner().invoke(cli, ["redteam", "scenario", str(path)])
    assert result.exit_code == 1
    assert "FAIL  an attacker hopes" in result.output
    assert "got not_permitted" in result.output


def test_an_approval_replayed_twice_runs_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
steps:
  - call: send_money
    args: {recipient: GB33BUKB20201555555555, amount: 1200, subject: laptop}
    expect: approval_required
  - approve: last
    as: alice
  - call: send_money
    args: {recipient: GB33BUKB20201555555555, amount: 1200, subject: laptop}
    repeat: 3
    expect: [allow, approval_required, approval_required]
  - ran: {send_money: 1}
""",
    )
    assert all(r.ok for r in Scenario.load(path).run())


def test_a_malformed_scenario_is_one_error_line(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - call: send_money\n    expect: maybe\n")
    with pytest.raises(ScenarioError, match=r"steps\[0\]: expect 'maybe'"):
        Scenario.load(path)
    result = CliRunner().invoke(cli, ["redteam", "scenario", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")


def test_policies_given_on_the_command_line_replace_the_files_bundle(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "bundle: does/not/exist\nprincipal: support-bot\nscanners: [secrets]\n"
        "tools: {get_balance: {}, get_transactions: {}, send_money: {}}\n"
        "steps:\n  - tools: [get_balance, get_transactions]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["redteam", "scenario", "--policies", str(BANKING), str(path)])
    assert result.exit_code == 0, result.output
