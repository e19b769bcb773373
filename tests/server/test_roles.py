"""The pages grant each role exactly what the API grants it (G15).

Approvers decide approvals: every approval, its call as the gate recorded it,
and the one decision record that held it. Admins read the whole audit log and
reload the bundle. Each page route is checked against the API endpoint that
gives the same data, for each kind of person, over real HTTP; then an approver
tries every route for audit content that is not an approval's own.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server_helpers import KNOWN, PASSWORD, Served, Tokens, bearer, post_call, sign_in
from warded.server import create_app, load_config
from warded.server.accounts import AccountBook, Role

SECRET_SESSION = "support-run-7f3a"  # what only the whole audit log holds


@dataclass
class World:
    base: str
    agent: httpx.Client
    approval: str  # held, pending
    decided: str  # held, denied by alice
    other_seq: int  # a record of another agent's call, no approval's


@contextlib.contextmanager
def running(config_path: Path, tokens: Tokens) -> Iterator[World]:
    """The service on real HTTP with a held call, a denied one and another agent's call."""
    with (
        Served(create_app(load_config(config_path))) as base,
        httpx.Client(base_url=base, timeout=30) as agent,
    ):
        other = post_call(agent, tokens.support, "get_balance", {}, session=SECRET_SESSION)
        assert other["status"] == "ok", other
        held = [
            post_call(agent, tokens.billing, "send_money", pay, session="page-run")
            for pay in (
                {"recipient": KNOWN, "amount": 1500, "subject": "laptop"},
                {"recipient": KNOWN, "amount": 2500, "subject": "desk"},
            )
        ]
        approval, decided = (h["refusal"]["approval_id"] for h in held)
        denied = agent.post(f"/v1/approvals/{decided}/deny", json={}, headers=bearer(tokens.alice))
        assert denied.status_code == 200, denied.text
        records = agent.get("/v1/audit?limit=1000", headers=bearer(tokens.admin)).json()["records"]
        other_seq = next(r["seq"] for r in records if r["session"] == SECRET_SESSION)
        yield World(base, agent, approval, decided, other_seq)


@pytest.fixture
def world(config_path: Path, tokens: Tokens) -> Iterator[World]:
    with running(config_path, tokens) as found:
        yield found


def api_status(world: World, token: str, path: str) -> int:
    return world.agent.get(path, headers=bearer(token)).status_code


PEOPLE: dict[str, frozenset[Role]] = {
    "alice": frozenset({"approver"}),  # an Approver in finance
    "bob": frozenset({"approver"}),  # an Approver in no group
    "root": frozenset({"admin"}),
    "dana": frozenset({"approver", "admin"}),  # both roles, but no Approver in the bundle
    "erin": frozenset({"approver"}),  # the role, but no Approver in the bundle
}


@pytest.mark.requirement("G15")
@pytest.mark.parametrize("who", sorted(PEOPLE))
def test_each_page_answers_a_person_as_the_api_answers_them(
    config_path: Path, tokens: Tokens, who: str
) -> None:
    """For every person: a page is 200 exactly where the API endpoint giving the same
    data is 200, and 403 exactly where that endpoint is 403."""
    book = AccountBook(config_path.parent / "accounts.json")
    token = {"alice": tokens.alice, "bob": tokens.bob, "root": tokens.admin}.get(who)
    if token is None:
        token = book.add(who, "person", roles=PEOPLE[who], password=PASSWORD)
    with running(config_path, tokens) as world:
        approvals = api_status(world, token, "/v1/approvals")
        record = api_status(world, token, f"/v1/approvals/{world.approval}/record")
        audit = api_status(world, token, "/v1/audit")
        with httpx.Client(base_url=world.base, timeout=30) as browser:
            assert sign_in(browser, who) == 303
            expected = {
                "/approvals": approvals,
                "/approvals/list": approvals,
                f"/approvals/{world.approval}/record": record,
                f"/approvals/{world.decided}/record": record,
                "/audit": audit,
                f"/audit/{world.other_seq}": audit,
                "/audit?decision=allow": audit,
            }
            for path, status in expected.items():
                assert browser.get(path).status_code == status, (who, path, status)
            with browser.stream("GET", "/approvals/events") as feed:
                assert feed.status_code == approvals, who
            csrf = _csrf(browser)
            decided = browser.post(
                f"/approvals/{world.approval}",
                data={"verdict": "deny", "csrf": csrf},
                follow_redirects=False,
            )
            assert decided.status_code == (303 if approvals == 200 else 403), who
            home = browser.get("/", follow_redirects=False)
            first = "/approvals" if "approver" in PEOPLE[who] else "/audit"
            assert home.headers["location"] == first
            nav = browser.get("/bundle").text  # every person with a role reads the bundle
            assert ('href="/audit"' in nav) == ("admin" in PEOPLE[who])
            assert ('href="/approvals"' in nav) == ("approver" in PEOPLE[who])


def _csrf(browser: httpx.Client) -> str:
    """The session's CSRF token from whichever page the person may open."""
    page = browser.get("/bundle").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


@pytest.mark.requirement("G15")
def test_an_approver_reads_no_audit_content_but_the_held_calls(
    world: World, tokens: Tokens
) -> None:
    """Alice decides approvals: she sees each held call and the decision record that
    held it, and nothing of another agent's calls, on any route, following any link."""
    with httpx.Client(base_url=world.base, timeout=30) as browser:
        assert sign_in(browser) == 303
        seen: dict[str, str] = {}
        todo = ["/", "/approvals", "/approvals/list", "/bundle"]
        while todo:  # every page a link on a page she can open leads to
            path = todo.pop()
            if path in seen:
                continue
            answer = browser.get(path)
            seen[path] = answer.text
            if answer.status_code == 200 and "html" in answer.headers["content-type"]:
                todo += re.findall(r'href="(/[^"]*)"', answer.text)
        assert f"/approvals/{world.approval}/record" in seen
        assert f"/approvals/{world.decided}/record" in seen
        assert "laptop" in seen[f"/approvals/{world.approval}/record"]
        assert "desk" in seen[f"/approvals/{world.decided}/record"]
        assert not [p for p in seen if p.startswith("/audit")]
        for path, text in seen.items():
            assert SECRET_SESSION not in text, path
        held = browser.get(f"/approvals/{world.approval}/record").text
        assert "verifies through" not in held  # nothing about the log as a whole
        for path in (
            f"/audit/{world.other_seq}",
            "/audit?agent=support-bot&tool=get_balance",
            "/audit?before=99",
            "/approvals/no-such-approval/record",
            f"/approvals/{world.approval}/../../audit/{world.other_seq}",
        ):
            answer = browser.get(path)
            assert answer.status_code in (403, 404), path
            assert SECRET_SESSION not in answer.text, path
        for other in (tokens.billing, tokens.support, tokens.gateway):  # agents, PEPs: no
            assert api_status(world, other, f"/v1/approvals/{world.approval}/record") == 403
        api = world.agent.get(
            f"/v1/approvals/{world.approval}/record", headers=bearer(tokens.alice)
        )
        assert api.json()["detail"]["approval"] == world.approval
        assert api.json()["seq"] != world.other_seq
