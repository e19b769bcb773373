"""`warded approvals`: list, show, approve and deny from the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from warded import Gate, ManualClock, Principal, Refusal, Session, SQLiteStore
from warded.cli import cli

KNOWN = "GB33BUKB20201555555555"
LAPTOP = {"recipient": KNOWN, "amount": 1200, "subject": "laptop"}
NOW = 1_767_225_600.0


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def pending(tmp_path: Path, banking_dir: Path) -> tuple[Gate, Path, str, list[Any]]:
    db = tmp_path / "store.db"
    gate = Gate.from_directory(banking_dir, store=SQLiteStore(db), clock=ManualClock(NOW))
    ran: list[Any] = []

    @gate.tool(resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> str:
        ran.append(amount)
        return "sent"

    held = gate.call(Principal.agent("billing-bot"), "send_money", LAPTOP, Session("s"))
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    return gate, db, held.approval_id, ran


@pytest.mark.requirement("G8")
def test_an_approval_from_the_command_line_lets_the_identical_retry_run_once(
    pending: tuple[Gate, Path, str, list[Any]], banking_dir: Path
) -> None:
    gate, db, approval, ran = pending
    listed = run("approvals", "list", str(db), "--status", "pending", "--now", str(NOW))
    assert listed.exit_code == 0
    assert approval in listed.output
    shown = run("approvals", "show", str(db), approval, "--now", str(NOW))
    assert shown.exit_code == 0
    assert '"amount": 1200' in shown.output
    assert KNOWN in shown.output

    args = ["approvals", "approve", str(db), approval, "--policies", str(banking_dir)]
    outsider = run(*args, "--as", "bob", "--now", str(NOW))
    assert outsider.exit_code == 1
    assert "[not_in_group]" in outsider.output
    unknown = run(*args, "--as", "mallory", "--now", str(NOW))
    assert unknown.exit_code == 1
    assert "[not_an_approver]" in unknown.output
    agent = run(*args, "--as", "billing-bot", "--now", str(NOW))
    assert agent.exit_code == 1
    ok = run(*args, "--as", "alice", "--reason", "new hire", "--now", str(NOW))
    assert ok.exit_code == 0, ok.output
    again = run(*args, "--as", "alice", "--now", str(NOW))
    assert again.exit_code == 1
    assert "[not_pending]" in again.output

    session = Session("s")
    assert gate.call(Principal.agent("billing-bot"), "send_money", LAPTOP, session) == "sent"
    replay = gate.call(Principal.agent("billing-bot"), "send_money", LAPTOP, session)
    assert isinstance(replay, Refusal)
    assert replay.code == "approval_required"
    assert ran == [1200]
    events = [
        r.body["detail"].get("event") for r in gate.store.records() if r.body["kind"] == "event"
    ]
    assert events == [
        "approval.created",
        "approval.refused",
        "approval.approved",
        "approval.refused",
        "approval.consumed",
        "approval.created",
    ]


@pytest.mark.requirement("G8")
def test_a_denied_approval_never_runs_and_an_expired_one_cannot_be_approved(
    pending: tuple[Gate, Path, str, list[Any]], banking_dir: Path
) -> None:
    gate, db, approval, ran = pending
    args = ["--as", "alice", "--policies", str(banking_dir)]
    denied = run("approvals", "deny", str(db), approval, *args, "--now", str(NOW))
    assert denied.exit_code == 0
    retry = gate.call(Principal.agent("billing-bot"), "send_money", LAPTOP, Session("s"))
    assert isinstance(retry, Refusal)
    assert retry.code == "approval_required"
    assert retry.approval_id != approval
    late = str(NOW + gate.approval_ttl + 1)
    assert retry.approval_id is not None
    expired = run("approvals", "approve", str(db), retry.approval_id, *args, "--now", late)
    assert expired.exit_code == 1
    assert "[expired]" in expired.output
    assert ran == []


def test_approvals_list_as_json_and_errors_are_one_line(
    pending: tuple[Gate, Path, str, list[Any]], tmp_path: Path
) -> None:
    _, db, approval, _ = pending
    listed = run("approvals", "list", str(db), "--format", "json", "--now", str(NOW))
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["id"] for r in rows] == [approval]
    assert rows[0]["status"] == "pending"
    missing = run("approvals", "show", str(db), "nope")
    assert missing.exit_code == 1
    assert missing.output.strip().startswith("error:")
    nodb = run("approvals", "list", str(tmp_path / "absent.db"))
    assert nodb.exit_code == 1
    assert not (tmp_path / "absent.db").exists()


def test_the_installed_command_runs_as_a_module(tmp_path: Path, banking_dir: Path) -> None:
    shutil.copytree(banking_dir, tmp_path / "p")
    done = subprocess.run(
        [sys.executable, "-m", "warded.cli", "validate", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("ok: ")


def _held_message(tmp_path: Path, body: str) -> tuple[Path, str]:
    """A store holding a message of `body` for approval (links_tools' bundle, the user's
    words declared, a page with injected orders read); the store and the approval's id."""
    from link_tools import SESSION, USER_SAID, links_bundle, register
    from warded.scanners.injection import InjectionScanner

    db = tmp_path / "store.db"
    gate = Gate.from_directory(
        links_bundle(tmp_path),
        store=SQLiteStore(db),
        clock=ManualClock(NOW),
        output_scanners=[InjectionScanner()],
    )
    register(gate)
    agent, session = Principal.agent("billing-bot"), Session(SESSION)
    gate.trust(session, USER_SAID)
    assert not isinstance(
        gate.call(agent, "fetch", {"url": "https://notes.example"}, session), Refusal
    )
    held = gate.call(agent, "send_message", {"to": "Bob", "body": body}, session)
    assert isinstance(held, Refusal)
    assert held.approval_id is not None
    return db, held.approval_id


@pytest.mark.requirement("G8")
def test_show_prints_each_link_with_its_sources_and_the_flag(tmp_path: Path) -> None:
    """What the approvals page shows of a held message's links, `approvals show` prints."""
    from link_tools import ATTACK

    body = f"Wiki: www.our-wiki.org, and see www.evil-site.com! {ATTACK}\u202e"
    db, approval = _held_message(tmp_path, body)

    shown = run("approvals", "show", str(db), approval, "--now", str(NOW))
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "  links in body: 4; all share: no source common to all" in lines
    assert "    www.our-wiki.org  found in: the user" in lines
    (evil,) = [line for line in lines if "www.evil-site.com" in line and "FLAGGED" in line]
    assert evil.startswith("    www.evil-site.com  FLAGGED  found in: ")
    assert "tool result: fetch" in evil
    assert "flagged: injected orders" in evil
    idn = "host www.p\u0430ypal.com is www.xn--pypal-4ve.com (not plain ASCII: check each letter)"
    assert f"      {idn}" in lines
    assert "\u202e" not in shown.output  # a bidi override prints as its code, never raw


@pytest.mark.requirement("G8")
def test_show_escapes_a_links_hidden_characters_once_as_the_page_does(tmp_path: Path) -> None:
    """A character that does not print shows as its code, the same `\\u{…}` the page
    shows, escaped once: not `\\u{005c}u{0007}`, and never raw."""
    from warded.links import links, shown

    link = "https://ev\x07il.example/\u00a0x"  # a bell in the host; a no-break space after
    db, approval = _held_message(tmp_path, f"see {link} now")
    (found,) = links(link)

    printed = run("approvals", "show", str(db), approval, "--now", str(NOW))
    assert printed.exit_code == 0, printed.output
    lines = printed.output.splitlines()
    page = shown(found).text  # what the page and the API give
    assert page == "https://ev\\u{0007}il.example/"
    assert any(line.startswith(f"    {page}  found in: ") for line in lines), lines
    assert "\\u{005c}" not in printed.output
    assert "\x07" not in printed.output


def test_show_of_an_approval_without_links_prints_no_links(
    pending: tuple[Gate, Path, str, list[Any]],
) -> None:
    _, db, approval, _ = pending
    shown = run("approvals", "show", str(db), approval, "--now", str(NOW))
    assert shown.exit_code == 0
    assert "links in" not in shown.output
