"""Shadow mode in the service: a candidate bundle decided and logged beside the live one,
never enforced, and `warded audit shadow` reporting where the two disagreed.

The candidate lowers the limit for payments without approval from 100.00 to
20.00: a payment of 50.00 is allowed live and held for approval by the shadow
bundle (a shadow decision is the policy's verdict, so "held" reads as "deny"
for no permit of the shadow bundle matched).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from server_helpers import BANKING, Tokens, payment, post_call, serve_run, write_config
from service_tools import EXECUTED
from warded import ManualClock, PolicyBundle
from warded.cli import cli
from warded.server import create_app, load_config


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def shadow_report(db: Path) -> Any:
    return json.loads(run("audit", "shadow", str(db), "--format", "json").stdout)


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """The banking bundle with payments without approval only below 20.00."""
    new = tmp_path / "candidate"
    shutil.copytree(BANKING, new)
    payments = new / "payments.cedar"
    text = payments.read_text()
    assert text.count('lessThan(decimal("100.0"))') == 1
    payments.write_text(text.replace('lessThan(decimal("100.0"))', 'lessThan(decimal("20.0"))'))
    return new


def pay(client: httpx.Client | TestClient, token: str, amount: float, call_id: str) -> Any:
    args = payment(amount)
    return post_call(client, token, "send_money", args, session="shadowed", call_id=call_id)


def test_the_shadow_bundle_decides_beside_the_live_one_and_is_never_enforced(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], candidate: Path
) -> None:
    path, tokens = accounts_file
    config = write_config(tmp_path, path, shadow=str(candidate))
    before = len(EXECUTED)
    with TestClient(create_app(load_config(config), clock=ManualClock())) as client:
        health = client.get("/healthz").json()
        assert health["shadow_bundle_version"] == PolicyBundle.from_directory(candidate).version
        assert health["shadow_bundle_version"] != health["bundle_version"]
        assert pay(client, tokens.billing, 10, "a")["status"] == "ok"  # both allow
        assert pay(client, tokens.billing, 50, "b")["status"] == "ok"  # live allows, shadow not
        assert pay(client, tokens.billing, -1, "c")["status"] == "refused"  # both deny
    assert [amount for _, a in EXECUTED[before:] for amount in [a["amount"]]] == [10, 50]

    db = tmp_path / "warded.db"
    report = run("audit", "shadow", str(db), "--format", "json")
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)
    assert data["shadow_decisions"] == 3
    (d,) = data["disagreements"]
    assert (d["principal"], d["tool"], d["live"], d["shadow"]) == (
        'Agent::"billing-bot"',
        "send_money",
        "allow",
        "deny",
    )
    assert d["live_policies"] == ["payments.small-known"]
    assert d["shadow_policies"] == []
    assert data["by_agent_and_tool"] == [
        {
            "principal": 'Agent::"billing-bot"',
            "tool": "send_money",
            "shadow_decisions": 3,
            "disagreements": 1,
        }
    ]
    text = run("audit", "shadow", str(db)).stdout.splitlines()
    assert text[0] == "3 shadow decisions, 1 disagree with the live bundle"
    assert text[1] == 'Agent::"billing-bot" send_money: 1 of 3 disagree'
    assert text[2].startswith(f"  record {d['seq']}: live allow, shadow deny")


def test_a_service_without_a_shadow_bundle_logs_no_shadow_decisions(
    tmp_path: Path, client: TestClient, tokens: Tokens
) -> None:
    assert client.get("/healthz").json()["shadow_bundle_version"] is None
    assert pay(client, tokens.billing, 50, "only")["status"] == "ok"
    data = shadow_report(tmp_path / "warded.db")
    assert data == {"shadow_decisions": 0, "by_agent_and_tool": [], "disagreements": []}


def test_a_broken_shadow_setting_is_an_error_naming_it(
    tmp_path: Path, accounts_file: tuple[Path, Tokens]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.cedar").write_text("permit (principal, action, resource")
    config = write_config(tmp_path, accounts_file[0], shadow=str(broken))
    result = run("serve", "run", str(config))
    assert result.exit_code == 1
    assert result.output.startswith(f"error: shadow bundle {broken}")
    wrong = write_config(tmp_path, accounts_file[0], shadow=["not", "a", "path"])
    result = run("serve", "run", str(wrong))
    assert result.exit_code != 0
    assert "shadow has the wrong type" in result.output


@pytest.fixture
def served(tmp_path: Path, accounts_file: tuple[Path, Tokens], candidate: Path) -> Iterator[str]:
    """`warded serve run CONFIG --shadow DIR` in a subprocess."""
    config = write_config(tmp_path, accounts_file[0], live_poll_seconds=1.0)
    tests = str(Path(__file__).resolve().parent.parent)
    with serve_run(config, "--shadow", str(candidate), env={"PYTHONPATH": tests}) as url:
        yield url


def test_serve_run_with_a_shadow_bundle_end_to_end(
    served: str, tmp_path: Path, tokens: Tokens, candidate: Path
) -> None:
    with httpx.Client(base_url=served, timeout=60) as client:
        health = client.get("/healthz").json()
        assert health["shadow_bundle_version"] == PolicyBundle.from_directory(candidate).version
        assert pay(client, tokens.billing, 50, "over-http")["status"] == "ok"
    data = shadow_report(tmp_path / "warded.db")
    assert [(d["live"], d["shadow"]) for d in data["disagreements"]] == [("allow", "deny")]
