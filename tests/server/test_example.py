"""The banking example as docs/service.md runs it: `warded serve run service.yaml`, accounts
made with `warded serve account add`, and the scripted agent `http_agent.py` calling over
HTTP; a person approves its large payment, and its retry runs exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from server_helpers import PASSWORD, ROOT, serve_run

EXAMPLE = ROOT / "examples" / "banking"
WAIT = 120.0


def account(config: Path, *options: str, password: str | None = None) -> str:
    """`warded serve account add CONFIG OPTIONS`; the token it prints once."""
    done = subprocess.run(
        [sys.executable, "-m", "warded.cli", "serve", "account", "add", str(config), *options],
        input=password,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )
    return done.stdout.split("token (shown once): ", 1)[1].split()[0]


def test_the_scripted_agent_over_http_with_a_person_approving(tmp_path: Path) -> None:
    settings = yaml.safe_load((EXAMPLE / "service.yaml").read_text())
    settings["policies"] = str(EXAMPLE / "policies")
    settings["tools"] = str(EXAMPLE / "tools.py") + ":register"
    settings["live_poll_seconds"] = 0.2
    config = tmp_path / "service.yaml"
    config.write_text(yaml.safe_dump(settings))
    agent = account(config, "--agent", "billing-bot")
    alice = account(
        config, "--person", "alice", "--role", "approver", "--password-stdin", password=PASSWORD
    )
    with serve_run(config) as url:
        script = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "http_agent.py"), "--url", url, "--token", agent],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert script.stdout is not None
        lines: list[str] = []
        for line in script.stdout:  # the agent blocks until someone approves
            lines.append(line)
            if line.startswith("waiting for a person to approve "):
                break
        else:
            raise AssertionError("".join(lines))
        assert lines[0] == "tools: send_money, get_balance, get_transactions, read_document\n"
        assert "'status': 'sent', 'amount': 42.5" in lines[2]
        approval = line.split()[6]
        with httpx.Client(base_url=url, timeout=60) as person:
            answer = person.post(
                f"/v1/approvals/{approval}/approve",
                json={"reason": "the new hire's laptop"},
                headers={"authorization": f"Bearer {alice}"},
            )
            assert answer.status_code == 200, answer.text
        rest, _ = script.communicate(timeout=WAIT)
        assert script.returncode == 0
    after = rest.splitlines()
    assert after[0] == f"approval {approval}: approved"
    assert "'status': 'sent', 'amount': 1200" in after[1]  # the retry ran
    assert "'code': 'approval_required'" in after[2]  # the next one needs a new approval

    store = Path(settings["store"])
    if not store.is_absolute():
        store = tmp_path / store
    tail = ["audit", "tail", str(store), "-n", "100", "--format", "json"]
    records = subprocess.run(
        [sys.executable, "-m", "warded.cli", *tail],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    ).stdout.splitlines()
    bodies = [json.loads(r) for r in records]
    ran = [b for b in bodies if b["kind"] == "outcome" and b["tool"] == "send_money"]
    assert [b["outcome"] for b in ran] == ["ok", "ok"]  # 42.50 and 1200, once each
