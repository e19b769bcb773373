"""End to end in a real browser (Debian's chromium driven by Playwright).

An agent's large payment appears on the approvals page without a reload
(server-sent events), a person approves it in the browser, and the agent's
retry runs exactly once. Set WARDED_SCREENSHOTS=DIR to keep the pages as PNGs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_helpers import (
    KNOWN,
    PASSWORD,
    Served,
    Tokens,
    bearer,
    hold_message,
    prepare_links,
)
from service_tools import EXECUTED
from warded.server import create_app, load_config

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="Debian chromium is not installed (.ci/run installs it)",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def shoot(page: Any, name: str) -> None:
    target = os.environ.get("WARDED_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def sign_in(page: Any, base: str, who: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=id]", who)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: not url.endswith("/login"), timeout=WAIT_MS)


def test_a_large_payment_is_approved_in_the_browser_and_runs_once(
    browser: Any, config_path: Path, tokens: Tokens
) -> None:
    from playwright.sync_api import expect

    app = create_app(load_config(config_path))
    with Served(app) as base, httpx.Client(base_url=base, timeout=30) as agent:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{base}/approvals")
        page.fill("input[name=id]", "alice")
        page.fill("input[name=password]", PASSWORD)
        shoot(page, "service-login")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Approvals", timeout=WAIT_MS)
        expect(page.locator("#approvals")).to_have_attribute("data-live", "yes", timeout=WAIT_MS)
        expect(page.locator("article.approval")).to_have_count(0)

        laptop = {"recipient": KNOWN, "amount": 1200, "subject": "laptop for the new hire"}
        call = {"tool": "send_money", "args": laptop, "session": "run-e2e"}
        before = len(EXECUTED)
        first = agent.post("/v1/calls", json=call, headers=bearer(tokens.billing)).json()
        approval = first["refusal"]["approval_id"]
        assert first["refusal"]["code"] == "approval_required"

        card = page.locator(f"#approval-{approval}")
        expect(card).to_be_visible(timeout=WAIT_MS)  # arrived live, no reload
        expect(card).to_contain_text("send_money")
        expect(card).to_contain_text("1200")
        expect(card).to_contain_text("laptop for the new hire")
        expect(card).to_contain_text("Payments from 100.00 to 5000.00 to known payees")
        shoot(page, "service-approvals")

        card.locator("input[name=reason]").fill("approved in the browser")
        card.locator("button.approve").click()
        expect(page.locator(".notice")).to_contain_text("approved", timeout=WAIT_MS)
        expect(page.locator(f"#approval-{approval}")).to_have_count(0)
        expect(page.locator("table.list")).to_contain_text("approved in the browser")
        shoot(page, "service-approved")

        state = agent.get(f"/v1/approvals/{approval}", headers=bearer(tokens.billing)).json()
        assert state["status"] == "approved"
        assert state["decided_by"] == "alice"
        retried = agent.post("/v1/calls", json=call, headers=bearer(tokens.billing)).json()
        assert retried["status"] == "ok"
        again = agent.post("/v1/calls", json=call, headers=bearer(tokens.billing)).json()
        assert again["refusal"]["code"] == "approval_required"
        assert EXECUTED[before:] == [("send_money", {"recipient": KNOWN, "amount": 1200})]

        page.locator(f"a[href='/approvals/{approval}/record']").click()  # decided: its record
        expect(page.locator("h1")).to_have_text(f"Audit record #{state['record']}")
        expect(page.locator("pre.record")).to_contain_text("laptop for the new hire")
        expect(page.locator("nav a[href='/audit']")).to_have_count(0)  # the log is the admin's
        assert page.goto(f"{base}/audit").status == 403

        sign_in(page, base, "root")
        expect(page.locator("h1")).to_have_text("Audit log", timeout=WAIT_MS)
        page.goto(f"{base}/audit?agent=billing-bot")
        expect(page.locator(".chain.ok")).to_contain_text("The hash chain verifies")
        shoot(page, "service-audit")
        page.locator(f"a[href='/audit/{state['record']}']").click()
        expect(page.locator("h1")).to_have_text(f"Audit record #{state['record']}")
        expect(page.locator(".chain.ok")).to_contain_text("the chain verifies through record")
        expect(page.locator("pre.record")).to_contain_text("approval_required")
        shoot(page, "service-record")
        sign_in(page, base, "alice")
        page.goto(f"{base}/bundle")
        expect(page.locator(".governance h1")).to_contain_text("Governance document")
        shoot(page, "service-bundle")
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/approvals")
        expect(page.locator("#approvals")).to_have_attribute("data-live", "yes", timeout=WAIT_MS)
        assert not [e for e in errors if "Content Security Policy" in e]


def test_a_held_message_shows_its_flagged_link_and_where_it_came_from(
    browser: Any, links_config: Path, tokens: Tokens
) -> None:
    """A message whose link came from injected orders in a tool result waits; the
    approver's page shows the link, the tool it came from and the flag, and
    nothing in the attacker's text runs or becomes markup."""
    from playwright.sync_api import expect

    from link_tools import ATTACK

    app = create_app(load_config(links_config))
    with Served(app) as base, httpx.Client(base_url=base, timeout=30) as agent:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{base}/approvals")
        page.fill("input[name=id]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#approvals")).to_have_attribute("data-live", "yes", timeout=WAIT_MS)

        prepare_links(agent, tokens.billing)
        body = f"Wiki: www.our-wiki.org, and see www.evil-site.com! {ATTACK}"
        approval = hold_message(agent, tokens.billing, body)

        card = page.locator(f"#approval-{approval}")
        expect(card).to_be_visible(timeout=WAIT_MS)  # arrived live
        links = card.locator(".links[data-arg=body]")
        expect(links).to_contain_text("body: 4 links")
        evil = links.locator("li.link.flagged")
        expect(evil).to_have_count(1)
        expect(evil.locator("code.link-text")).to_have_text("www.evil-site.com")
        expect(evil).to_contain_text("tool result: fetch")
        expect(evil.locator(".source.flagged")).to_have_text("flagged: injected orders")
        expect(card.locator("header .tag.flagged")).to_have_text("1 flagged link")
        wiki = links.locator("li.link", has_text="www.our-wiki.org")
        expect(wiki.locator(".source.trusted")).to_have_text("the user")
        lookalike = links.locator("li.link", has_text="paypal.com")
        expect(lookalike).to_have_count(0)  # the Cyrillic 'а' is no Latin 'a' ...
        idn = links.locator("li.link", has_text="xn--pypal-4ve.com")
        expect(idn.locator(".idn")).to_contain_text("not plain ASCII")  # ... and says so
        shoot(page, "service-approval-links")

        # the attacker's markup is text: no element, no script ran
        expect(card.locator("script, img, textarea")).to_have_count(0)
        expect(card.locator("table.args")).to_contain_text('<script>alert("args")</script>')
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert dialogs == []


def attacker_site(base: str, token: str) -> Any:
    """A page on another origin (same host, another port: the same *site*, so the
    SameSite cookie alone would not stop it) that frames the approvals page and posts
    the sign-in form with the attacker's credentials and a form token of their own."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    page = f"""<!doctype html><title>cat pictures</title>
<iframe name="framed" src="{base}/approvals"></iframe>
<form id="f" method="post" action="{base}/login" target="_top">
<input name="id" value="bob"><input name="password" value="{PASSWORD}">
<input name="csrf" value="{token}"></form>"""

    async def home(request: Any) -> HTMLResponse:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", home)])


@pytest.mark.requirement("G15")
def test_another_site_can_neither_frame_the_pages_nor_sign_the_browser_in(
    browser: Any, config_path: Path
) -> None:
    from playwright.sync_api import expect

    app = create_app(load_config(config_path))
    with Served(app) as base, httpx.Client(base_url=base, timeout=30) as attacker:
        form = attacker.get("/login").text
        token = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        with Served(attacker_site(base, token)) as evil:
            assert evil != base
            page = browser.new_page()
            page.goto(evil)
            framed = page.frame(name="framed")
            assert framed is not None
            assert not framed.url.startswith(base)  # refused: frame-ancestors 'none'
            with page.expect_navigation(timeout=WAIT_MS):
                page.evaluate("document.getElementById('f').submit()")
            expect(page.locator("body")).to_contain_text("another origin", timeout=WAIT_MS)
            page.goto(f"{base}/approvals")
            expect(page.locator("input[name=password]")).to_be_visible(timeout=WAIT_MS)
