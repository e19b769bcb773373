"""The command line on a shared database: policy push, audit in-doubt, and the audit
and approvals commands given a PostgreSQL URL instead of a file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from store_backends import KEY, pg_schema
from warded import (
    AuditEntry,
    DirectorySource,
    Gate,
    ManualClock,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
)
from warded.cli import cli
from warded.stores.postgres import PostgresStore

BANKING = Path(__file__).resolve().parents[2] / "examples" / "banking" / "policies"
KNOWN = "GB33BUKB20201555555555"
PAY = {"recipient": KNOWN, "amount": 1200, "subject": "invoice 7"}


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("WARDED_KEY", KEY)
    with pg_schema() as u:
        yield u


def banking_gate(store: PostgresStore | SQLiteStore, ran: list[str]) -> Gate:
    gate = Gate(PolicyBundle.from_directory(BANKING), store=store, clock=ManualClock())

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> str:
        ran.append(subject)
        return "sent"

    @gate.tool
    def get_balance() -> float:
        ran.append("balance")
        return 1.0

    return gate


# -- warded policy push ---------------------------------------------------------------------


def test_policy_push_makes_a_bundle_live_and_voids_approvals_bound_to_another(
    url: str, tmp_path: Path
) -> None:
    store = PostgresStore(url)
    try:
        gate = banking_gate(store, [])
        held = gate.call(Principal.agent("billing-bot"), "send_money", PAY, Session("s"))
        assert isinstance(held, Refusal)
        assert held.approval_id is not None

        changed = tmp_path / "changed"
        shutil.copytree(BANKING, changed)
        with (changed / "reads.cedar").open("a") as f:
            f.write("\n// changed\n")
        first = run("policy", "push", str(BANKING), "--db", url, "--by", "ops")
        second = run("policy", "push", str(changed), "--db", url)

        version = PolicyBundle.from_directory(changed).version
        assert store.live_version() == version
        assert gate.approvals.get(held.approval_id).status == "voided"
        pushes = [
            r.body["detail"]
            for r in store.records()
            if r.body["detail"].get("event") == "policy.push"
        ]
    finally:
        store.close()
    assert first.exit_code == 0, first.output
    old = PolicyBundle.from_directory(BANKING).version
    assert first.output == f"ok: bundle {old} is live; 0 open approvals voided\n"
    assert second.output == f"ok: bundle {version} is live; 1 open approvals voided\n"
    assert [p["to"] for p in pushes] == [old, version]
    assert pushes[0]["by"] == "ops"


@pytest.mark.requirement("G5")
def test_a_bundle_that_does_not_load_is_never_made_live(url: str, tmp_path: Path) -> None:
    assert run("policy", "push", str(BANKING), "--db", url).exit_code == 0
    broken = tmp_path / "broken"
    shutil.copytree(BANKING, broken)
    (broken / "typo.cedar").write_text(
        'permit (principal, action == Action::"send_monye", resource);'
    )

    result = run("policy", "push", str(broken), "--db", url)

    assert result.exit_code == 1
    assert "typo.cedar" in result.output
    store = PostgresStore(url)
    try:
        assert store.live_version() == PolicyBundle.from_directory(BANKING).version
    finally:
        store.close()


def test_policy_push_needs_a_database_url(tmp_path: Path) -> None:
    result = run("policy", "push", str(BANKING), "--db", str(tmp_path / "audit.db"))
    assert result.exit_code == 1
    assert "needs a PostgreSQL URL" in result.output


# -- warded audit in-doubt ----------------------------------------------------------------------


@pytest.mark.requirement("G13")
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_in_doubt_lists_allowed_calls_without_an_outcome_and_nothing_else(
    kind: str, url: str, tmp_path: Path
) -> None:
    target = str(tmp_path / "audit.db") if kind == "sqlite" else url
    store: PostgresStore | SQLiteStore = (
        SQLiteStore(target) if kind == "sqlite" else PostgresStore(target)
    )
    ran: list[str] = []
    try:
        gate = banking_gate(store, ran)
        billing = Principal.agent("billing-bot")
        assert gate.call(billing, "get_balance", {}, Session("s")) == 1.0
        refused = gate.call(billing, "send_money", {**PAY, "recipient": "XX"}, Session("s"))
        assert isinstance(refused, Refusal)
        # a decision committed, then the process died before the outcome: simulated by
        # recording a decision the way the gate does and no outcome after it
        decision = next(r.body for r in store.records() if r.body["decision"] == "allow")
        store.append(
            [
                AuditEntry(
                    kind="decision",
                    call="lost-call",
                    time=decision["time_us"] / 1e6,
                    principal=decision["principal"],
                    tool="send_money",
                    args_digest="d" * 64,
                    decision="allow",
                    bundle_version=decision["bundle_version"],
                )
            ]
        )
    finally:
        store.close()

    listed = run("audit", "in-doubt", target, "--json")
    human = run("audit", "in-doubt", target)
    recent = run("audit", "in-doubt", target, "--older-than", str(10 * 365 * 86400))

    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["call"] for line in listed.output.splitlines()] == ["lost-call"]
    assert "call lost-call" in human.output
    assert "1 calls in doubt" in human.output
    assert [line for line in recent.output.splitlines() if "call " in line] == []


# -- the audit and approvals commands on a URL --------------------------------------------------


@pytest.mark.requirement("G14")
def test_audit_verify_tail_and_checkpoint_work_on_a_database_url(url: str, tmp_path: Path) -> None:
    store = PostgresStore(url)
    try:
        banking_gate(store, []).call(
            Principal.agent("billing-bot"), "get_balance", {}, Session("s")
        )
    finally:
        store.close()

    cp = tmp_path / "cp.json"
    checkpoint = run("audit", "checkpoint", url, "--out", str(cp))
    verified = run("audit", "verify", url, "--checkpoint", str(cp))
    tail = run("audit", "tail", url, "-n", "1")

    assert checkpoint.exit_code == 0, checkpoint.output
    assert json.loads(cp.read_text())["size"] == 2
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("ok: 2 records")
    assert "outcome ok" in tail.output


@pytest.mark.requirement("G8")
def test_an_approval_decided_with_the_cli_on_the_database_runs_on_any_node(url: str) -> None:
    ran: list[str] = []
    first, second = PostgresStore(url), PostgresStore(url)
    try:
        a, b = banking_gate(first, ran), banking_gate(second, ran)
        billing = Principal.agent("billing-bot")
        held = a.call(billing, "send_money", PAY, Session("s"))
        assert isinstance(held, Refusal)
        assert held.approval_id is not None

        listed = run("approvals", "list", url)
        approved = run(
            "approvals",
            "approve",
            url,
            held.approval_id,
            "--as",
            "alice",
            "--policies",
            str(BANKING),
            "--now",
            str(ManualClock().now()),  # the gates' clock
        )
        result = b.call(billing, "send_money", PAY, Session("s"))
    finally:
        first.close()
        second.close()
    assert held.approval_id in listed.output
    assert approved.exit_code == 0, approved.output
    assert result == "sent"
    assert ran == ["invoice 7"]


def test_the_live_source_reads_what_was_pushed(url: str) -> None:
    from warded.stores.live import LiveSource

    store = PostgresStore(url)
    try:
        source = LiveSource(store)
        with pytest.raises(Exception, match="warded policy push"):
            source.read()
        run("policy", "push", str(BANKING), "--db", url)
        assert source.read() == DirectorySource(BANKING).read()
    finally:
        store.close()
