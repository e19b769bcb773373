"""Approvals over HTTP: a held call, a person's decision, the agent's retry runs once."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server_helpers import KNOWN, Tokens, bearer
from service_tools import EXECUTED

LARGE = {"recipient": KNOWN, "amount": 1200, "subject": "laptop"}


def pay(client: TestClient, token: str) -> dict:  # type: ignore[type-arg]
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
