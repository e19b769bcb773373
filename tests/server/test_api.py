"""The agent API over HTTP: listing, dry runs, calls, records, health."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server_helpers import KNOWN, Tokens, bearer, payment, post_call
from service_tools import EXECUTED


def call(client: TestClient, token: str, tool: str, args: dict[str, Any], **extra: Any) -> Any:
    return post_call(client, token, tool, args, **{"session": "s-1", **extra})


def test_an_agent_lists_only_the_tools_its_policy_could_permit(
    client: TestClient, tokens: Tokens
) -> None:
    billing = client.get("/v1/tools?session=s-1", headers=bearer(tokens.billing)).json()
    support = client.get("/v1/tools?session=s-1", headers=bearer(tokens.support)).json()
    assert {t["name"] for t in billing["tools"]} == {
        "send_money",
        "get_balance",
        "get_transactions",
        "read_document",
    }
    assert {t["name"] for t in support["tools"]} == {"get_balance", "get_transactions"}
    send = next(t for t in billing["tools"] if t["name"] == "send_money")
    assert send["parameters"]["required"] == ["recipient", "amount", "subject"]


def test_a_permitted_call_runs_and_returns_its_result(client: TestClient, tokens: Tokens) -> None:
    before = len(EXECUTED)
    answer = call(
        client, tokens.billing, "send_money", {"recipient": KNOWN, "amount": 10, "subject": "x"}
    )
    assert answer == {"status": "ok", "result": {"status": "sent", "amount": 10}}
    assert EXECUTED[before:] == [("send_money", {"recipient": KNOWN, "amount": 10})]


def test_a_refusal_is_an_answer_with_the_gates_refusal(client: TestClient, tokens: Tokens) -> None:
    before = len(EXECUTED)
    answer = call(
        client, tokens.billing, "send_money", {"recipient": KNOWN, "amount": -5, "subject": "x"}
    )
    assert answer["status"] == "refused"
    refusal = answer["refusal"]
    assert refusal["code"] == "not_permitted"
    assert refusal["policy"] == "payments.positive"
    assert refusal["message"] == "This call is not permitted by policy."
    assert len(refusal["ref"]) == 16
    assert len(EXECUTED) == before


@pytest.mark.requirement("G2")
def test_a_hidden_tool_and_a_missing_tool_get_the_same_answer_over_http(
    client: TestClient, tokens: Tokens
) -> None:
    hidden = call(
        client, tokens.support, "send_money", {"recipient": KNOWN, "amount": 1, "subject": "x"}
    )
    missing = call(client, tokens.support, "wire_all_funds", {})
    assert hidden["refusal"]["code"] == "unknown_tool"
    hidden["refusal"]["ref"] = missing["refusal"]["ref"] = ""
    assert hidden == missing
    dry_hidden = client.post(
        "/v1/decide",
        json={"tool": "send_money", "args": {}, "session": "s"},
        headers=bearer(tokens.support),
    )
    dry_missing = client.post(
        "/v1/decide",
        json={"tool": "wire_all_funds", "args": {}, "session": "s"},
        headers=bearer(tokens.support),
    )
    assert dry_hidden.content == dry_missing.content


def test_decide_is_a_dry_run_that_records_nothing(client: TestClient, tokens: Tokens) -> None:
    before = client.get("/healthz").json()["store"]["records"]
    allowed = client.post(
        "/v1/decide",
        json={
            "tool": "send_money",
            "args": {"recipient": KNOWN, "amount": 5, "subject": "x"},
            "session": "s",
        },
        headers=bearer(tokens.billing),
    ).json()
    held = client.post(
        "/v1/decide",
        json={
            "tool": "send_money",
            "args": {"recipient": KNOWN, "amount": 500, "subject": "x"},
            "session": "s",
        },
        headers=bearer(tokens.billing),
    ).json()
    assert allowed["allowed"] is True
    assert allowed["policies"] == ["payments.small-known"]
    assert held["allowed"] is False
    assert held["refusal"]["code"] == "approval_required"
    assert client.get("/healthz").json()["store"]["records"] == before


def decide(client: TestClient, token: str, amount: float) -> Any:
    body = {"tool": "send_money", "args": payment(amount), "session": "s"}
    answer = client.post("/v1/decide", json=body, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_decide_answers_while_another_process_holds_the_stores_write_lock(
    client: TestClient, tokens: Tokens, config_path: Path
) -> None:
    """A dry run reads the budget's committed counters: it takes no write transaction."""
    holder = sqlite3.connect(config_path.parent / "warded.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # SQLite's write lock, as another writer holds it
        assert decide(client, tokens.billing, 5)["allowed"] is True
        assert decide(client, tokens.billing, 500)["refusal"]["code"] == "approval_required"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_decide_sees_a_spent_budget(client: TestClient, tokens: Tokens) -> None:
    for _ in range(3):  # 3 × 99 of the 300.00 a day payments.small-known allows
        assert call(client, tokens.billing, "send_money", payment(99))["status"] == "ok"
    assert decide(client, tokens.billing, 3)["allowed"] is True  # 297 + 3 fits exactly
    refused = decide(client, tokens.billing, 4)
    assert refused["allowed"] is False
    assert refused["refusal"]["code"] == "limit_exceeded"
    assert call(client, tokens.billing, "send_money", payment(3))["status"] == "ok"
    assert decide(client, tokens.billing, 1)["refusal"]["code"] == "limit_exceeded"


def test_a_call_id_runs_at_most_once(client: TestClient, tokens: Tokens) -> None:
    first = call(client, tokens.billing, "get_balance", {}, call_id="model-call-1")
    again = call(client, tokens.billing, "get_balance", {}, call_id="model-call-1")
    assert first["status"] == "ok"
    assert again["status"] == "refused"
    assert again["refusal"]["code"] == "not_permitted"


def test_an_agent_reads_its_own_records(client: TestClient, tokens: Tokens) -> None:
    call(client, tokens.billing, "get_balance", {})
    call(client, tokens.support, "get_balance", {})
    records = client.get("/v1/audit", headers=bearer(tokens.billing)).json()["records"]
    assert records
    assert {r["principal"] for r in records} == {'Agent::"billing-bot"'}
    after = records[0]["seq"]
    later = client.get(f"/v1/audit?after={after}", headers=bearer(tokens.billing)).json()
    assert [r["seq"] for r in later["records"]] == [r["seq"] for r in records[1:]]


@pytest.mark.parametrize("after", [2**63 - 1, 2**63, 10**30])
def test_records_after_a_position_past_any_seq_are_none_not_an_error(
    client: TestClient, tokens: Tokens, after: int
) -> None:
    call(client, tokens.billing, "get_balance", {})
    for token in (tokens.billing, tokens.admin):
        answer = client.get(f"/v1/audit?after={after}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"records": []}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"tool": "get_balance", "args": {}}, "session"),
        ({"tool": "get_balance", "args": [], "session": "s"}, "args"),
        ({"tool": 7, "args": {}, "session": "s"}, "tool"),
        ({"tool": "x" * 200, "args": {}, "session": "s"}, "tool"),
        (
            {"tool": "get_balance", "args": {}, "session": "s", "principal": 'Agent::"x"'},
            "principal",
        ),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_field(
    client: TestClient, tokens: Tokens, body: dict[str, Any], where: str
) -> None:
    answer = client.post("/v1/calls", json=body, headers=bearer(tokens.billing))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert where in error["message"]


def test_invalid_arguments_are_a_refusal_not_an_error(client: TestClient, tokens: Tokens) -> None:
    answer = call(
        client, tokens.billing, "send_money", {"recipient": KNOWN, "amount": "lots", "subject": "x"}
    )
    assert answer["refusal"]["code"] == "invalid_arguments"
    assert "lots" not in str(answer)


def test_a_body_over_the_limit_is_refused_before_it_is_read(
    client: TestClient, tokens: Tokens
) -> None:
    big = {"tool": "get_balance", "args": {"pad": "x" * 1_100_000}, "session": "s"}
    answer = client.post("/v1/calls", json=big, headers=bearer(tokens.billing))
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 50_000

    chunked = client.post(
        "/v1/calls",
        content=chunks(),
        headers={**bearer(tokens.billing), "content-type": "application/json"},
    )
    assert chunked.status_code == 413


def test_every_answer_carries_the_security_headers_and_the_request_id(
    client: TestClient, tokens: Tokens
) -> None:
    answer = client.get(
        "/v1/tools?session=s", headers={**bearer(tokens.billing), "x-request-id": "abc-1"}
    )
    assert answer.headers["x-request-id"] == "abc-1"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_health_names_the_live_bundle_and_readiness_follows_the_store(
    client: TestClient,
) -> None:
    health = client.get("/healthz").json()
    service = client.app.state.service  # type: ignore[attr-defined]
    assert health["bundle_version"] == service.gate.version
    assert health["status"] == "ok"
    assert health["store"]["ok"] is True
    assert client.get("/readyz").status_code == 200
    service.gate.store.close()
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").json()["error"]["code"] == "unavailable"
    assert client.get("/healthz").json()["status"] == "degraded"


def test_the_openapi_document_lists_every_api_endpoint(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = set(document["paths"])
    assert {
        "/v1/tools",
        "/v1/decide",
        "/v1/calls",
        "/v1/audit",
        "/v1/approvals",
        "/v1/approvals/{approval_id}",
        "/v1/approvals/{approval_id}/approve",
        "/v1/approvals/{approval_id}/deny",
        "/v1/admin/reload",
        "/access/v1/evaluation",
        "/access/v1/evaluations",
        "/access/v1/search/subject",
        "/access/v1/search/resource",
        "/access/v1/search/action",
        "/.well-known/authzen-configuration",
        "/healthz",
        "/readyz",
    } <= paths
    assert not any(p.startswith(("/approvals", "/login", "/audit")) for p in paths)
