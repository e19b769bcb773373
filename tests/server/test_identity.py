"""G15: over HTTP an agent is who its credential says, and nothing more."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server_helpers import KNOWN, Tokens, bearer
from warded import ManualClock
from warded.server import accounts
from warded.server.accounts import AccountBook

pytestmark = pytest.mark.requirement("G15")
LARGE = {"recipient": KNOWN, "amount": 1200, "subject": "laptop"}


def held(client: TestClient, token: str, session: str = "s-1") -> str:
    answer = client.post(
        "/v1/calls",
        json={"tool": "send_money", "args": LARGE, "session": session},
        headers=bearer(token),
    ).json()
    assert answer["refusal"]["code"] == "approval_required"
    approval_id: str = answer["refusal"]["approval_id"]
    return approval_id


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Bearer wd_000000000000_nope",
        "Basic YWxpY2U6cGFzcw==",
        "bearer wd_",
    ],
)
def test_a_missing_or_wrong_credential_is_refused_everywhere(
    client: TestClient, header: str | None
) -> None:
    headers = {"authorization": header} if header is not None else {}
    for method, path in [
        ("GET", "/v1/tools?session=s"),
        ("POST", "/v1/decide"),
        ("POST", "/v1/calls"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/approvals"),
        ("POST", "/v1/admin/reload"),
        ("POST", "/access/v1/evaluation"),
    ]:
        body = {"tool": "get_balance", "args": {}, "session": "s"} if method == "POST" else None
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["error"]["code"] == "unauthenticated"


def test_a_token_with_the_right_key_id_and_a_wrong_secret_is_refused(
    client: TestClient, tokens: Tokens
) -> None:
    key_id = tokens.billing.split("_")[1]
    forged = f"wd_{key_id}_{'A' * 43}"
    answer = client.get("/v1/tools?session=s", headers=bearer(forged))
    assert answer.status_code == 401


def test_a_removed_account_stops_working_at_once(
    client: TestClient, tokens: Tokens, config_path: Path
) -> None:
    assert client.get("/v1/tools?session=s", headers=bearer(tokens.support)).status_code == 200
    AccountBook(config_path.parent / "accounts.json").remove("support-bot")
    assert client.get("/v1/tools?session=s", headers=bearer(tokens.support)).status_code == 401


def test_a_verified_token_is_checked_with_argon2_again_after_a_minute(
    accounts_file: tuple[Path, Tokens], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, tokens = accounts_file
    clock = ManualClock()
    book = AccountBook(path, clock)
    checked: list[str] = []
    real = accounts._check

    def counted(stored: str, given: str) -> bool:
        checked.append(given)
        return real(stored, given)

    monkeypatch.setattr(accounts, "_check", counted)
    for _ in range(3):
        found = book.by_token(tokens.billing)
        assert found is not None
        assert found.id == "billing-bot"
    assert len(checked) == 1  # argon2 once, then the cache
    clock.advance(accounts.VERIFIED_SECONDS - 1)
    assert book.by_token(tokens.billing) is not None
    assert len(checked) == 1
    clock.advance(2)
    assert book.by_token(tokens.billing) is not None
    assert len(checked) == 2  # expired from the cache: checked again
    assert book.by_token(tokens.billing + "x") is None  # a near miss is never a cache hit
    assert len(checked) == 3


def test_the_token_cache_is_keyed_per_process_and_holds_no_plain_digest(
    accounts_file: tuple[Path, Tokens],
) -> None:
    path, tokens = accounts_file
    one, two = AccountBook(path), AccountBook(path)
    assert one.by_token(tokens.billing) is not None
    assert two.by_token(tokens.billing) is not None
    (first,), (second,) = one._verified, two._verified
    assert first != second
    plain = hashlib.sha256(tokens.billing.encode()).digest()
    assert plain not in (first, second)


@pytest.mark.parametrize(
    "extra",
    [
        {"principal": 'Agent::"support-bot"'},
        {"as": "support-bot"},
        {"on_behalf_of": "support-bot"},
        {"subject": {"type": "Agent", "id": "support-bot"}},
    ],
)
def test_no_field_lets_an_agent_act_as_another_principal(
    client: TestClient, tokens: Tokens, extra: dict[str, Any]
) -> None:
    body = {"tool": "send_money", "args": {"recipient": KNOWN, "amount": 5, "subject": "x"}}
    answer = client.post(
        "/v1/calls", json={**body, "session": "s", **extra}, headers=bearer(tokens.support)
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"


def test_an_agent_calls_only_as_its_own_principal(client: TestClient, tokens: Tokens) -> None:
    body = {"tool": "send_money", "args": {"recipient": KNOWN, "amount": 5, "subject": "x"}}
    answer = client.post(
        "/v1/calls", json={**body, "session": "s"}, headers=bearer(tokens.support)
    ).json()
    assert answer["refusal"]["code"] == "unknown_tool"  # support-bot cannot pay, whoever it names
    records = client.get("/v1/audit", headers=bearer(tokens.support)).json()["records"]
    assert records[-1]["principal"] == 'Agent::"support-bot"'


def test_agents_can_never_approve_anything(client: TestClient, tokens: Tokens) -> None:
    approval = held(client, tokens.billing)
    for token in (tokens.billing, tokens.support, tokens.gateway):
        for verdict in ("approve", "deny"):
            answer = client.post(
                f"/v1/approvals/{approval}/{verdict}", json={}, headers=bearer(token)
            )
            assert answer.status_code == 403
            assert answer.json()["error"]["code"] == "forbidden"
        assert client.get("/v1/approvals", headers=bearer(token)).status_code == 403
    state = client.get(f"/v1/approvals/{approval}", headers=bearer(tokens.billing)).json()
    assert state["status"] == "pending"


def test_a_person_named_like_the_agent_cannot_approve_its_calls(
    client: TestClient, tokens: Tokens
) -> None:
    approval = held(client, tokens.billing)
    answer = client.post(
        f"/v1/approvals/{approval}/approve", json={}, headers=bearer(tokens.impostor)
    )
    assert answer.status_code == 403  # not an Approver entity of the bundle


def test_an_approver_outside_the_group_cannot_approve(client: TestClient, tokens: Tokens) -> None:
    approval = held(client, tokens.billing)
    answer = client.post(f"/v1/approvals/{approval}/approve", json={}, headers=bearer(tokens.bob))
    assert answer.status_code == 403
    assert "finance" in answer.json()["error"]["message"]


def test_an_agent_reads_no_other_principals_records_or_approvals(
    client: TestClient, tokens: Tokens
) -> None:
    approval = held(client, tokens.billing)
    client.post(
        "/v1/calls",
        json={"tool": "get_balance", "args": {}, "session": "s"},
        headers=bearer(tokens.billing),
    )
    theirs = client.get("/v1/audit?limit=1000", headers=bearer(tokens.support)).json()
    assert all(r["principal"] == 'Agent::"support-bot"' for r in theirs["records"])
    assert not any("billing" in str(r) for r in theirs["records"])
    other = client.get(f"/v1/approvals/{approval}", headers=bearer(tokens.support))
    missing = client.get("/v1/approvals/0000000000000000", headers=bearer(tokens.support))
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()


def test_only_admins_read_the_whole_log_and_reload(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/v1/audit", headers=bearer(tokens.alice)).status_code == 403
    assert client.post("/v1/admin/reload", headers=bearer(tokens.alice)).status_code == 403
    assert client.post("/v1/admin/reload", headers=bearer(tokens.billing)).status_code == 403
    everything = client.get("/v1/audit?limit=1000", headers=bearer(tokens.admin))
    assert everything.status_code == 200
    reloaded = client.post("/v1/admin/reload", headers=bearer(tokens.admin))
    assert reloaded.status_code == 200
    assert reloaded.json()["bundle_version"] == client.get("/healthz").json()["bundle_version"]


def test_agents_and_people_cannot_reach_the_authzen_api(client: TestClient, tokens: Tokens) -> None:
    body = {
        "subject": {"type": "Agent", "id": "billing-bot", "properties": {"role": "admin"}},
        "action": {"name": "send_money"},
        "resource": {"type": "Payee", "id": KNOWN},
    }
    for token in (tokens.billing, tokens.support, tokens.alice, tokens.admin):
        for path in ("/access/v1/evaluation", "/access/v1/evaluations", "/access/v1/search/action"):
            answer = client.post(path, json=body, headers=bearer(token))
            assert answer.status_code == 403, (path, answer.text)
