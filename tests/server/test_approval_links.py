"""What an approver sees of the links inside a held message (`warded.links`).

The policy holds a message whose links do not all come from the user; the
approvals page (and `GET /v1/approvals/{id}`) shows, per argument, the count
and shared sources the policy saw and each link with its own sources, a link
from injected orders flagged. The page is an attacker's text shown to a
person: nothing in an argument or a link becomes markup, and a host in
look-alike letters is shown beside its punycode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from link_tools import ATTACK, LOOKALIKE, SENT
from server_helpers import PASSWORD, Tokens, bearer, hold_message, prepare_links
from warded import ManualClock
from warded.server import create_app, load_config


@pytest.fixture
def app(links_config: Path, clock: ManualClock) -> Iterator[TestClient]:
    with TestClient(create_app(load_config(links_config), clock=clock)) as c:
        yield c


def sign_in(client: TestClient) -> None:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={"id": "alice", "password": PASSWORD, "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_each_link_is_listed_with_its_own_sources(app: TestClient, tokens: Tokens) -> None:
    prepare_links(app, tokens.billing)
    sent = len(SENT)
    message = "Wiki: www.our-wiki.org, and see www.evil-site.com!"
    approval = hold_message(app, tokens.billing, message)
    assert len(SENT) == sent  # held: nothing went out
    view = app.get(f"/v1/approvals/{approval}", headers=bearer(tokens.alice)).json()
    (body,) = view["links"]
    assert body["arg"] == "body"
    assert body["count"] == 2
    assert body["provenance"] == []  # what the policy saw: no source both links share
    wiki, evil = body["items"]
    assert wiki["link"] == "www.our-wiki.org"
    assert wiki["provenance"] == ["user"]
    assert not wiki["flagged"]
    assert evil["link"] == "www.evil-site.com"
    assert {"tool:fetch", "untrusted", "injected"} <= set(evil["provenance"])
    assert evil["flagged"]
    assert body["unlisted"] == 0

    sign_in(app)
    page = app.get("/approvals").text
    card = page.split(f'id="approval-{approval}"', 1)[1].split("</article>", 1)[0]
    assert '<code class="link-text" dir="ltr">www.evil-site.com</code>' in card
    assert "tool result: fetch" in card
    assert '<span class="source flagged">flagged: injected orders</span>' in card
    assert '<span class="tag flagged">1 flagged link</span>' in card
    assert '<span class="source trusted">the user</span>' in card


def test_nothing_an_attacker_writes_becomes_markup(app: TestClient, tokens: Tokens) -> None:
    prepare_links(app, tokens.billing)
    approval = hold_message(app, tokens.billing, ATTACK)
    sign_in(app)
    page = app.get("/approvals").text
    card = page.split(f'id="approval-{approval}"', 1)[1].split("</article>", 1)[0]
    assert "<script" not in card
    assert "<img" not in card
    assert "</textarea>" not in card
    assert "&lt;script&gt;alert(&#34;args&#34;)&lt;/script&gt;" in card
    assert "{{7*7}}" in card  # shown as written, not evaluated
    assert "https://evil.example/a?x=1&amp;amp;y=" in card  # the link's own `&amp;`, escaped
    # the look-alike host: its letters as written, and beside it the punycode DNS resolves
    assert "www.p\u0430ypal.com/login" in card
    assert "xn--" in card
    view = app.get(f"/v1/approvals/{approval}", headers=bearer(tokens.alice)).json()
    paypal = view["links"][0]["items"][-1]
    assert paypal["host"] == LOOKALIKE
    assert paypal["ascii"] == "www.xn--pypal-4ve.com"
    assert paypal["non_ascii"]


def test_a_call_held_before_links_were_listed_still_shows_what_the_policy_saw() -> None:
    """An older decision record has the count and the shared set but no list."""
    from warded.links import for_approvers
    from warded.server.pages import templates

    seen = {"body": {"count": 2, "provenance": ["tool:fetch"]}}
    view = {
        "id": "a1",
        "tool": "send_message",
        "principal": 'Agent::"billing-bot"',
        "group": "owner",
        "args": {"body": "x"},
        "resource": {"type": "Tool", "id": "send_message"},
        "session": "s",
        "labels": [],
        "provenance": {"to": []},
        "links": [a.to_json() for a in for_approvers(seen, None)],
        "policy": "p",
        "policy_description": None,
        "created": 0.0,
        "expires": 1.0,
        "record": 3,
    }
    html = templates.env.get_template("_approvals.html").render(
        pending=[view], decided=[], csrf="t"
    )
    assert "<code>body</code>: 2 links; all share: " in html
    assert '<span class="source tool">tool result: fetch</span>' in html
    assert "The links themselves were not recorded for this call." in html
    assert "flagged link" not in html
    assert '<code>to</code> found in: <span class="source none">' in html
