"""Failed sign-ins are throttled per (address, account), per account and per address,
never for good, and only a configured proxy says where a request came from (G15).

A real server on 127.0.0.1 with a `ManualClock`: time moves only when a test
moves it. Behind a `trusted_proxies` proxy, `X-Forwarded-For` stands for the
person's address; anywhere else it is the attacker's own words.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_helpers import PASSWORD, Served, Tokens, bearer, write_config
from warded import ManualClock
from warded.server import create_app, load_config

LIMITS = {
    "login_failures": 5,
    "login_account_failures": 20,
    "login_address_failures": 100,
    "login_window_seconds": 300,
}
Attempt = Callable[..., httpx.Response]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@contextlib.contextmanager
def serve(tmp_path: Path, accounts: Path, clock: ManualClock, **extra: Any) -> Iterator[Attempt]:
    config = write_config(tmp_path, accounts, **{**LIMITS, **extra})
    with (
        Served(create_app(load_config(config), clock=clock)) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        found = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert found is not None
        csrf = found.group(1)

        def attempt(who: str, password: str, address: str | None = None) -> httpx.Response:
            """One sign-in, from `address` as a proxy would say it (X-Forwarded-For)."""
            headers = {"x-forwarded-for": address} if address is not None else {}
            client.cookies.clear()
            return client.post(
                "/login",
                data={"id": who, "password": password, "csrf": csrf},
                headers=headers,
                follow_redirects=False,
            )

        yield attempt


@pytest.fixture
def direct(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], clock: ManualClock
) -> Iterator[Attempt]:
    """Everyone reaches the service from one address (a proxy it was not told of)."""
    with serve(tmp_path, accounts_file[0], clock) as attempt:
        yield attempt


@pytest.fixture
def proxied(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], clock: ManualClock
) -> Iterator[Attempt]:
    """Behind a trusted proxy on 127.0.0.1: each request's address is its X-Forwarded-For."""
    with serve(tmp_path, accounts_file[0], clock, trusted_proxies=["127.0.0.1"]) as attempt:
        yield attempt


@pytest.mark.requirement("G15")
def test_wrong_passwords_for_one_account_lock_out_no_one_else_behind_a_shared_address(
    direct: Attempt,
) -> None:
    for _ in range(5):
        assert direct("alice", "guess").status_code == 401
    assert direct("alice", "guess").status_code == 429
    assert direct("bob", PASSWORD).status_code == 303  # same address, another account
    assert direct("root", PASSWORD).status_code == 303


@pytest.mark.requirement("G15")
def test_a_guess_from_many_addresses_is_bounded_per_account(
    proxied: Attempt, clock: ManualClock
) -> None:
    for i in range(20):
        assert proxied("alice", f"guess {i}", f"198.51.100.{i}").status_code == 401
    refused = proxied("alice", "guess 20", "198.51.100.20")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "300"
    assert proxied("alice", PASSWORD, "203.0.113.7").status_code == 429  # the account waits
    assert proxied("bob", PASSWORD, "198.51.100.1").status_code == 303  # others do not
    clock.advance(300)
    assert proxied("alice", PASSWORD, "203.0.113.7").status_code == 303


@pytest.mark.requirement("G15")
def test_one_address_spraying_many_accounts_is_stopped(proxied: Attempt) -> None:
    for i in range(100):
        assert proxied(f"user-{i}", PASSWORD, "192.0.2.66").status_code == 401
    assert proxied("alice", PASSWORD, "192.0.2.66").status_code == 429
    assert proxied("alice", PASSWORD, "192.0.2.67").status_code == 303


@pytest.mark.requirement("G15")
def test_the_back_off_is_bounded_and_a_success_resets_the_pair(
    direct: Attempt, clock: ManualClock
) -> None:
    """Refused attempts do not extend the wait: whoever keeps trying holds an account
    for at most the window after their last counted failure."""
    for _ in range(4):
        assert direct("alice", "typo").status_code == 401
    assert direct("alice", PASSWORD).status_code == 303  # forgets the four
    for _ in range(5):
        assert direct("alice", "typo").status_code == 401
        clock.advance(10)
    refused = direct("alice", PASSWORD)
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "250")
    for _ in range(20):  # keeps trying while refused
        assert direct("alice", "guess").status_code == 429
        clock.advance(12.5)
    assert direct("alice", PASSWORD).status_code == 303  # 300 s after the first counted failure


@pytest.mark.requirement("G15")
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], clock: ManualClock
) -> None:
    """Without `trusted_proxies` (or from a peer not in it) the header is the attacker's
    own words: a new made-up address per guess must not reset anything."""
    for trusted in ([], ["10.0.0.1"]):
        with serve(tmp_path, accounts_file[0], clock, trusted_proxies=trusted) as attempt:
            for i in range(5):
                assert attempt("alice", "guess", f"198.51.100.{i}").status_code == 401
            assert attempt("alice", PASSWORD, "198.51.100.99").status_code == 429, trusted


@pytest.mark.requirement("G15")
def test_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_saw(
    proxied: Attempt,
) -> None:
    """A proxy appends the address it saw to what the client sent: the client's own
    left part of X-Forwarded-For changes nothing."""
    for i in range(5):
        assert proxied("alice", "guess", f"10.{i}.0.1, 198.51.100.9").status_code == 401
    assert proxied("alice", PASSWORD, "10.99.0.1, 198.51.100.9").status_code == 429
    assert proxied("alice", PASSWORD, "10.0.0.1, 198.51.100.10").status_code == 303


@pytest.mark.requirement("G15")
def test_bad_tokens_for_one_key_do_not_shut_out_other_agents_at_the_address(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], clock: ManualClock
) -> None:
    path, tokens = accounts_file
    config = write_config(tmp_path, path, **LIMITS)
    with (
        Served(create_app(load_config(config), clock=clock)) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):

        def tools(token: str) -> int:
            return client.get("/v1/tools?session=s", headers=bearer(token)).status_code

        stale = tokens.billing[:-4] + "AAAA"  # billing-bot's key id, a wrong secret
        for _ in range(5):
            assert tools(stale) == 401
        refused = client.get("/v1/tools?session=s", headers=bearer(stale))
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "300")
        assert refused.json()["error"]["code"] == "too_many_failures"
        assert tools(tokens.support) == 200  # another agent behind the same address
        for i in range(95):
            assert tools(f"wd_k{i}_secret") == 401
        assert tools(tokens.support) == 429  # 100 failures: the address waits
        clock.advance(300)
        assert tools(tokens.billing) == 200


@pytest.mark.requirement("G15")
def test_behind_a_trusted_tls_proxy_people_can_sign_in_and_the_cookie_is_secure(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], clock: ManualClock
) -> None:
    """The proxy ends TLS: the browser's form says `Origin: https://…` while the service
    hears http. From a trusted proxy, `X-Forwarded-Proto` is the scheme; from anyone
    else it is ignored (the form is then refused, and no cookie is `Secure`)."""
    for trusted, expected in ((["127.0.0.1"], 303), ([], 403)):
        config = write_config(tmp_path, accounts_file[0], trusted_proxies=trusted)
        with (
            Served(create_app(load_config(config), clock=clock)) as base,
            httpx.Client(base_url=base, timeout=30) as browser,
        ):
            tls = {"x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.4"}
            form = browser.get("/login", headers=tls).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf is not None
            origin = base.replace("http://", "https://")
            answer = browser.post(
                "/login",
                data={"id": "alice", "password": PASSWORD, "csrf": csrf.group(1)},
                headers={**tls, "origin": origin},
                follow_redirects=False,
            )
            assert answer.status_code == expected, trusted
            if expected == 303:
                assert "secure" in answer.headers["set-cookie"].lower()


@pytest.mark.requirement("G15")
def test_an_ipv6_client_is_one_address_for_its_whole_slash_64(proxied: Attempt) -> None:
    """One IPv6 host holds a /64 (2**64 addresses): counted per address, it could
    guess at an account from a fresh address every time."""
    for i in range(5):
        assert proxied("alice", "guess", f"2001:db8:1:2::{i + 1:x}").status_code == 401
    assert proxied("alice", PASSWORD, "2001:db8:1:2:ffff::9").status_code == 429
    assert proxied("alice", PASSWORD, "2001:db8:1:3::1").status_code == 303  # another /64
    for _ in range(5):  # an IPv4 address written as IPv6 is that IPv4 address
        assert proxied("bob", "guess", "192.0.2.77").status_code == 401
    assert proxied("bob", PASSWORD, "::ffff:192.0.2.77").status_code == 429


@pytest.mark.requirement("G15")
def test_a_browser_that_signed_in_before_is_not_held_by_a_guess_at_its_account(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], clock: ManualClock
) -> None:
    """Guessing at Alice from many addresses holds her account for anyone new, but
    not for the browser she signed in with before: it has its own strict limit."""
    config = write_config(tmp_path, accounts_file[0], trusted_proxies=["127.0.0.1"], **LIMITS)
    with (
        Served(create_app(load_config(config), clock=clock)) as base,
        httpx.Client(base_url=base, timeout=30) as alice,
        httpx.Client(base_url=base, timeout=30) as bob,
        httpx.Client(base_url=base, timeout=30) as attacker,
    ):

        def attempt(browser: httpx.Client, who: str, password: str, address: str) -> int:
            found = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)
            assert found is not None
            return browser.post(
                "/login",
                data={"id": who, "password": password, "csrf": found.group(1)},
                headers={"x-forwarded-for": address},
                follow_redirects=False,
            ).status_code

        assert attempt(alice, "alice", PASSWORD, "203.0.113.5") == 303
        assert attempt(bob, "bob", PASSWORD, "203.0.113.6") == 303
        for i in range(20):
            assert attempt(attacker, "alice", f"guess {i}", f"198.51.100.{i}") == 401
        assert attempt(attacker, "alice", PASSWORD, "198.51.100.99") == 429
        assert attempt(bob, "alice", PASSWORD, "203.0.113.6") == 429  # Bob's browser: not hers
        alice.cookies.delete("warded_session")
        assert attempt(alice, "alice", PASSWORD, "192.0.2.1") == 303  # from anywhere
        for _ in range(5):  # her browser's own limit still holds
            assert attempt(alice, "alice", "typo", "192.0.2.1") == 401
        assert attempt(alice, "alice", PASSWORD, "192.0.2.1") == 429
