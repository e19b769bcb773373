"""Two service nodes on one PostgreSQL database: one truth for approvals, calls and the
live bundle (`warded policy push`), whichever node an agent or a person reaches."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server_helpers import BANKING, KNOWN, Tokens, bearer, payment, post_call, write_config
from service_tools import EXECUTED
from store_backends import KEY, pg_schema
from warded import ManualClock, PolicyBundle
from warded.policy.source import DirectorySource
from warded.server import ConfigError, create_app, load_config
from warded.stores.live import push
from warded.stores.postgres import PostgresStore


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("WARDED_KEY", KEY)  # every node of a deployment shares the key
    with pg_schema() as url:
        yield url


def make_live(url: str, policies: Path) -> str:
    store = PostgresStore(url)
    try:
        return push(store, DirectorySource(policies).read(), by="test")[0]
    finally:
        store.close()


def node(directory: Path, accounts: Path, url: str) -> TestClient:
    directory.mkdir()
    config = write_config(directory, accounts, store=url)
    return TestClient(create_app(load_config(config), clock=ManualClock()))


def pay(client: TestClient, token: str, amount: float) -> Any:
    return post_call(client, token, "send_money", payment(amount), session="shared-session")


def test_a_node_refuses_to_start_on_a_database_with_no_live_bundle(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], url: str
) -> None:
    config = write_config(tmp_path, accounts_file[0], store=url)
    with pytest.raises(ConfigError) as caught:
        create_app(load_config(config))
    assert "no bundle is live" in str(caught.value)
    assert "warded policy push" in str(caught.value)


@pytest.mark.requirement("G14")
def test_an_approval_held_on_one_node_is_approved_on_another_and_runs_once(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], url: str
) -> None:
    path, tokens = accounts_file
    version = make_live(url, BANKING)
    before = len(EXECUTED)
    with (
        node(tmp_path / "one", path, url) as one,
        node(tmp_path / "two", path, url) as two,
    ):
        assert one.get("/healthz").json()["bundle_version"] == version
        held = pay(one, tokens.billing, 1200)
        approval = held["refusal"]["approval_id"]
        assert held["refusal"]["code"] == "approval_required"
        pending = two.get("/v1/approvals?status=pending", headers=bearer(tokens.alice)).json()
        assert [a["id"] for a in pending["approvals"]] == [approval]
        decided = two.post(
            f"/v1/approvals/{approval}/approve", json={"reason": "ok"}, headers=bearer(tokens.alice)
        )
        assert decided.json()["status"] == "approved"
        assert pay(one, tokens.billing, 1200)["status"] == "ok"
        assert pay(two, tokens.billing, 1200)["refusal"]["code"] == "approval_required"
    assert EXECUTED[before:] == [("send_money", {"recipient": KNOWN, "amount": 1200})]


@pytest.mark.requirement("G6")
def test_a_pushed_bundle_governs_the_next_call_on_every_node(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], url: str
) -> None:
    path, tokens = accounts_file
    make_live(url, BANKING)
    stricter = tmp_path / "stricter"
    shutil.copytree(BANKING, stricter)
    payments = stricter / "payments.cedar"
    payments.write_text(
        payments.read_text().replace('lessThan(decimal("100.0"))', 'lessThan(decimal("20.0"))')
    )
    with (
        node(tmp_path / "one", path, url) as one,
        node(tmp_path / "two", path, url) as two,
    ):
        assert pay(one, tokens.billing, 50)["status"] == "ok"
        new = make_live(url, stricter)
        assert new == PolicyBundle.from_directory(stricter).version
        for client in (two, one):  # neither needs to have heard of the push yet
            answer = pay(client, tokens.billing, 50)
            assert answer["refusal"]["code"] == "not_permitted"  # 20.00 to 100.00: no permit
            assert client.get("/healthz").json()["bundle_version"] == new
