"""Approvals over HTTP: a held call, a person's decision, the agent's retry runs once."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from server_helpers import BANKING, KNOWN, Served, Tokens, bearer, write_config
from service_tools import EXECUTED
from warded.server import create_app, load_config

LARGE = {"recipient": KNOWN, "amount": 1200, "subject": "laptop"}


def pay(client: TestClient | httpx.Client, token: str) -> dict:  # type: ignore[type-arg]
    answer = client.post(
        "/v1/calls",
        json={"tool": "send_money", "args": LARGE, "session": "run-7"},
        headers=bearer(token),
    )
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def test_an_approved_call_runs_exactly_once_on_the_agents_retry(
    client: TestClient, tokens: Tokens
) -> None:
    before = len(EXECUTED)
    first = pay(client, tokens.billing)
    approval = first["refusal"]["approval_id"]
    assert first["refusal"]["code"] == "approval_required"
    assert first["refusal"]["policy"] == "payments.large-known"

    listed = client.get("/v1/approvals?status=pending", headers=bearer(tokens.alice)).json()
    shown = next(a for a in listed["approvals"] if a["id"] == approval)
    assert shown["args"] == LARGE
    assert shown["tool"] == "send_money"
    assert shown["policy_description"].startswith("Payments from 100.00")
    assert shown["session"] == "run-7"

    approved = client.post(
        f"/v1/approvals/{approval}/approve",
        json={"reason": "laptop for the new hire"},
        headers=bearer(tokens.alice),
    ).json()
    assert approved["status"] == "approved"
    assert approved["decided_by"] == "alice"
    mine = client.get(f"/v1/approvals/{approval}", headers=bearer(tokens.billing)).json()
    assert mine["status"] == "approved"

    retried = pay(client, tokens.billing)
    assert retried == {"status": "ok", "result": {"status": "sent", "amount": 1200}}
    again = pay(client, tokens.billing)
    assert again["refusal"]["code"] == "approval_required"
    assert again["refusal"]["approval_id"] != approval
    assert EXECUTED[before:] == [("send_money", {"recipient": KNOWN, "amount": 1200})]


def test_a_denied_call_never_runs(client: TestClient, tokens: Tokens) -> None:
    before = len(EXECUTED)
    approval = pay(client, tokens.billing)["refusal"]["approval_id"]
    denied = client.post(
        f"/v1/approvals/{approval}/deny", json={"reason": "no"}, headers=bearer(tokens.alice)
    ).json()
    assert denied["status"] == "denied"
    twice = client.post(f"/v1/approvals/{approval}/approve", json={}, headers=bearer(tokens.alice))
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "conflict"
    assert pay(client, tokens.billing)["refusal"]["code"] == "approval_required"
    assert len(EXECUTED) == before


def test_an_unknown_approval_is_not_found(client: TestClient, tokens: Tokens) -> None:
    answer = client.post("/v1/approvals/nope/approve", json={}, headers=bearer(tokens.alice))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


RACERS = 8  # half approve, half deny, every one at once


def race_decisions(bases: list[str], tokens: Tokens) -> None:
    """Hold a call, then let RACERS requests approve and deny it at once, spread over
    the servers at `bases`: exactly one decides, the others get a 409, the chain has
    one decision, and the agent's retry does what that one decision said."""
    with httpx.Client(base_url=bases[0], timeout=60) as agent:
        held = pay(agent, tokens.billing)
    approval = held["refusal"]["approval_id"]
    barrier = threading.Barrier(RACERS, timeout=60)
    answers: list[tuple[str, int]] = []

    def decide(i: int) -> None:
        verdict = ("approve", "deny")[i % 2]
        with httpx.Client(base_url=bases[i % len(bases)], timeout=60) as person:
            person.get("/v1/approvals?status=denied", headers=bearer(tokens.alice))  # argon2 once
            barrier.wait()
            answer = person.post(
                f"/v1/approvals/{approval}/{verdict}", json={}, headers=bearer(tokens.alice)
            )
        answers.append((verdict, answer.status_code))

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == RACERS
    (won,) = [verdict for verdict, status in answers if status == 200]
    assert sorted(status for _, status in answers) == [200] + [409] * (RACERS - 1)
    with httpx.Client(base_url=bases[-1], timeout=60) as admin:
        records = admin.get("/v1/audit?limit=1000", headers=bearer(tokens.admin)).json()
        state = admin.get(f"/v1/approvals/{approval}", headers=bearer(tokens.alice)).json()
    events = [
        r["detail"]["event"]
        for r in records["records"]
        if r["kind"] == "event" and r["detail"].get("approval") == approval
    ]
    decided = {"approve": "approved", "deny": "denied"}[won]
    assert state["status"] == decided
    assert events.count("approval.approved") + events.count("approval.denied") == 1
    assert f"approval.{decided}" in events
    before = len(EXECUTED)
    with httpx.Client(base_url=bases[0], timeout=60) as agent:
        retried = pay(agent, tokens.billing)
    assert (retried["status"] == "ok") is (won == "approve")
    assert len(EXECUTED) - before == (1 if won == "approve" else 0)


@pytest.mark.requirement("G8")
def test_racing_approve_and_deny_decide_once_on_sqlite(config_path: Path, tokens: Tokens) -> None:
    with Served(create_app(load_config(config_path))) as base:
        race_decisions([base], tokens)


@pytest.mark.requirement("G14")
def test_racing_approve_and_deny_on_two_nodes_decide_once(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], monkeypatch: pytest.MonkeyPatch
) -> None:
    from store_backends import KEY, pg_schema
    from warded.policy.source import DirectorySource
    from warded.stores.live import push
    from warded.stores.postgres import PostgresStore

    monkeypatch.setenv("WARDED_KEY", KEY)
    with pg_schema() as url:
        store = PostgresStore(url)
        push(store, DirectorySource(BANKING).read(), by="test")
        store.close()
        configs = []
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            configs.append(write_config(tmp_path / name, accounts_file[0], store=url))
        with (
            Served(create_app(load_config(configs[0]))) as one,
            Served(create_app(load_config(configs[1]))) as two,
        ):
            race_decisions([one, two], accounts_file[1])
