"""The pages: signing in, CSRF, the Content-Security-Policy, escaping, the audit browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server_helpers import KNOWN, PASSWORD, Served, Tokens, bearer, sign_in
from warded.server import create_app, load_config
from warded.server.accounts import AccountBook


def page_csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/approvals").text)
    assert found is not None
    return found.group(1)


def hold(client: TestClient, tokens: Tokens, subject: str = "laptop") -> str:
    body = {
        "tool": "send_money",
        "args": {"recipient": KNOWN, "amount": 1500, "subject": subject},
        "session": "page-run",
    }
    answer = client.post("/v1/calls", json=body, headers=bearer(tokens.billing)).json()
    approval: str = answer["refusal"]["approval_id"]
    return approval


def test_pages_need_a_signed_in_person(client: TestClient) -> None:
    for path in ("/approvals", "/audit", "/bundle", "/audit/0"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login"
    assert client.get("/approvals/events").status_code == 401


def test_a_wrong_password_is_refused_and_repeated_failures_are_throttled(
    client: TestClient,
) -> None:
    assert sign_in(client, "alice", "wrong password") == 401
    assert sign_in(client, "nobody", "wrong password") == 401
    assert sign_in(client, "alice") == 303


@pytest.mark.requirement("G15")
def test_a_sign_in_posted_from_another_origin_is_refused(client: TestClient) -> None:
    """Login CSRF: a page elsewhere must not sign the approver's browser in as the
    attacker (whose approvals would then be made, unknowingly, in the attacker's name)."""
    form = client.get("/login").text  # the attacker fetches a form token of their own
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={"id": "alice", "password": PASSWORD, "csrf": csrf.group(1)},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers
    assert client.get("/approvals", follow_redirects=False).status_code == 303


def test_a_token_is_not_a_password_and_agents_cannot_sign_in(
    client: TestClient, tokens: Tokens
) -> None:
    assert sign_in(client, "alice", tokens.alice) == 401
    assert sign_in(client, "billing-bot", tokens.billing) == 401


def test_the_page_shows_the_held_call_and_escapes_what_the_agent_wrote(
    client: TestClient, tokens: Tokens
) -> None:
    approval = hold(client, tokens, subject="<script>alert(1)</script>")
    assert sign_in(client) == 303
    page = client.get("/approvals")
    assert page.status_code == 200
    assert f'id="approval-{approval}"' in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Payments from 100.00 to 5000.00" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert not re.search(r"<script>(?!alert)", page.text)  # no inline script of our own


HIDDEN = "\u202e\u200b\u2028\x1b\u00a0"  # a bidi override, zero-width, line break, escape, no-break


@pytest.mark.requirement("G8")
def test_what_the_agent_wrote_shows_every_character_for_what_it_is(
    client: TestClient, tokens: Tokens
) -> None:
    """An approver must see the call that will run: a bidi override in an argument
    would show `rent` with what follows reversed, a zero-width space would hide a
    difference. The page shows each as its code, as `warded approvals show` does."""
    subject = "rent \u202efdp.exe\u200b"
    body = {
        "tool": "send_money",
        "args": {"recipient": KNOWN, "amount": 1500, "subject": subject},
        "session": f"run{HIDDEN}",
    }
    held = client.post("/v1/calls", json=body, headers=bearer(tokens.billing)).json()
    approval = held["refusal"]["approval_id"]
    client.post(  # a tool name the agent chose, in the audit log
        "/v1/calls",
        json={"tool": f"wire{HIDDEN}", "args": {}, "session": "s"},
        headers=bearer(tokens.billing),
    )
    assert sign_in(client) == 303
    csrf = page_csrf(client)
    client.post(f"/approvals/{approval}", data={"verdict": "deny", "csrf": csrf, "reason": HIDDEN})
    client.post("/v1/calls", json=body, headers=bearer(tokens.billing))  # held again

    for path in ("/approvals", "/approvals/list", f"/approvals/{approval}/record"):
        page = client.get(path).text
        assert [c for c in HIDDEN if c in page] == [], path
    page = client.get("/approvals").text
    assert "rent \\u{202e}fdp.exe\\u{200b}" in page
    assert "run\\u{202e}\\u{200b}\\u{2028}\\u{001b}\\u{00a0}" in page
    assert sign_in(client, "root") == 303  # the audit log is the admin's
    page = client.get("/audit").text
    assert [c for c in HIDDEN if c in page] == []
    assert "wire\\u{202e}" in page
    api = client.get(f"/v1/approvals/{approval}", headers=bearer(tokens.alice)).json()
    assert api["args"]["subject"] == subject  # the API gives the data as it is


def test_a_decision_without_the_csrf_token_is_refused(client: TestClient, tokens: Tokens) -> None:
    approval = hold(client, tokens)
    assert sign_in(client) == 303
    for data in ({"verdict": "approve"}, {"verdict": "approve", "csrf": "forged"}):
        answer = client.post(f"/approvals/{approval}", data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "csrf_failed"
    other_origin = client.post(
        f"/approvals/{approval}",
        data={"verdict": "approve", "csrf": page_csrf(client)},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert other_origin.status_code == 403
    state = client.get(f"/v1/approvals/{approval}", headers=bearer(tokens.alice)).json()
    assert state["status"] == "pending"


def test_approving_on_the_page_records_who_and_why(client: TestClient, tokens: Tokens) -> None:
    approval = hold(client, tokens)
    assert sign_in(client) == 303
    answer = client.post(
        f"/approvals/{approval}",
        data={"verdict": "approve", "reason": "budgeted", "csrf": page_csrf(client)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert "approved: send_money" in client.get(answer.headers["location"]).text
    state = client.get(f"/v1/approvals/{approval}", headers=bearer(tokens.alice)).json()
    assert (state["status"], state["decided_by"], state["reason"]) == (
        "approved",
        "alice",
        "budgeted",
    )


@pytest.mark.requirement("G8")
def test_a_notice_in_a_link_someone_else_made_is_not_shown(
    client: TestClient, tokens: Tokens
) -> None:
    """The page's notice says what the approver's own decision did; a link crafted
    with `?notice=` must not make the trusted page say something else."""
    approval = hold(client, tokens)
    assert sign_in(client) == 303
    forged = f"approved: send_money for billing-bot ({approval}); the rest are checked, approve"
    page = client.get("/approvals", params={"notice": forged}).text
    assert "the rest are checked" not in page
    assert 'class="notice"' not in page
    decided = client.post(
        f"/approvals/{approval}",
        data={"verdict": "deny", "csrf": page_csrf(client)},
    )
    assert f"denied: send_money for Agent::&#34;billing-bot&#34; ({approval})" in decided.text


def test_an_approver_outside_the_group_sees_why_nothing_happened(
    client: TestClient, tokens: Tokens
) -> None:
    approval = hold(client, tokens)
    assert sign_in(client, "bob") == 303
    answer = client.post(
        f"/approvals/{approval}",
        data={"verdict": "approve", "csrf": page_csrf(client)},
    )
    assert "not done: approver is not in finance" in answer.text


def test_the_audit_browser_filters_and_shows_chain_position_and_verify_status(
    client: TestClient, tokens: Tokens
) -> None:
    hold(client, tokens)
    client.post(
        "/v1/calls",
        json={"tool": "get_balance", "args": {}, "session": "s"},
        headers=bearer(tokens.support),
    )
    assert sign_in(client, "root") == 303
    page = client.get("/audit?agent=support-bot&decision=allow").text
    assert "The hash chain verifies" in page
    assert "Agent::&#34;support-bot&#34;" in page
    assert "Agent::&#34;billing-bot&#34;" not in page
    held = client.get("/audit?decision=approval_required").text
    seq = re.search(r'<a href="/audit/(\d+)">', held)
    assert seq is not None
    record = client.get(f"/audit/{seq.group(1)}").text
    assert f"#{seq.group(1)} of" in record
    assert "the chain verifies through record" in record
    assert "approval_required" in record
    bad_time = client.get("/audit?since=yesterday")
    assert "not a time" in bad_time.text


@pytest.mark.parametrize("position", ["9" * 5000, "\u00b2", "99999999999999999999999"])
def test_a_malformed_position_in_an_address_is_never_a_server_error(
    config_path: Path, position: str
) -> None:
    """A link someone crafted for an approver to click answers as the page would."""
    with (
        Served(create_app(load_config(config_path))) as base,
        httpx.Client(base_url=base, timeout=30) as person,
    ):
        assert sign_in(person) == 303
        with person.stream("GET", "/approvals/events", params={"v": position}) as feed:
            assert feed.status_code == 200
            assert feed.headers["content-type"].startswith("text/event-stream")
        assert sign_in(person, "root") == 303
        older = person.get("/audit", params={"before": position})
        assert older.status_code == 200
        record = person.get(f"/audit/{position}")
        assert record.status_code in (400, 404), record.text
        answer: Any = record.json()
        assert answer["error"]["code"] in ("invalid_request", "not_found")


@pytest.mark.requirement("G15")
def test_replacing_an_account_ends_the_sessions_signed_in_with_it(
    config_path: Path, tokens: Tokens
) -> None:
    """An admin who resets a leaked password (`warded serve account add` again) must
    also shut out whoever signed in with it: the session is bound to the account
    as it was, not only to its id."""
    with TestClient(create_app(load_config(config_path))) as client:
        approval = hold(client, tokens)
        assert sign_in(client) == 303
        csrf = page_csrf(client)
        AccountBook(config_path.parent / "accounts.json").add(
            "alice", "person", roles=frozenset({"approver"}), password="a new password"
        )
        for path in ("/approvals", "/audit"):
            answer = client.get(path, follow_redirects=False)
            assert (answer.status_code, answer.headers.get("location")) == (303, "/login")
        assert client.get("/approvals/list").status_code == 401
        decided = client.post(
            f"/approvals/{approval}",
            data={"verdict": "approve", "csrf": csrf},
            follow_redirects=False,
        )
        assert decided.headers.get("location") == "/login"
        assert sign_in(client) == 401  # the old password
        assert sign_in(client, password="a new password") == 303
        pending = client.get("/approvals").text
        assert f'id="approval-{approval}"' in pending  # still pending: nothing was decided


@pytest.mark.requirement("G15")
def test_a_person_without_a_role_is_shown_nothing(config_path: Path, tokens: Tokens) -> None:
    """The API gives a person with no role no approvals and no audit log; the pages,
    which show both (and the bundle), must not give them more."""
    AccountBook(config_path.parent / "accounts.json").add("carol", "person", password=PASSWORD)
    with TestClient(create_app(load_config(config_path))) as client:
        approval = hold(client, tokens)
        assert sign_in(client, "carol") == 303
        for path in ("/approvals", "/approvals/list", "/approvals/events", "/audit", "/bundle"):
            assert client.get(path).status_code == 403, path
        assert client.get("/audit/1").status_code == 403
        decided = client.post(f"/approvals/{approval}", data={"verdict": "approve"})
        assert decided.status_code == 403
        assert sign_in(client, "alice") == 303  # an approver, in the same browser
        assert f'id="approval-{approval}"' in client.get("/approvals").text  # still pending


def test_the_bundle_page_shows_each_agents_boundary(client: TestClient) -> None:
    assert sign_in(client) == 303
    page = client.get("/bundle").text
    assert 'Agent <code>Agent::"billing-bot"</code>' in page
    assert 'Agent <code>Agent::"support-bot"</code>' in page
    assert "payments.large-known" in page
    assert "finance" in page
    assert "<style>" not in page  # the page's own stylesheet, nothing inline (CSP)
