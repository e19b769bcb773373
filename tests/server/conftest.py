"""A service over the banking policies on SQLite, with accounts hashed once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from link_tools import links_bundle
from server_helpers import PASSWORD, Tokens, write_config
from warded import ManualClock
from warded.server import create_app, load_config
from warded.server.accounts import AccountBook


@pytest.fixture(scope="session")
def accounts_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tokens]:
    path = tmp_path_factory.mktemp("accounts") / "accounts.json"
    book = AccountBook(path)
    tokens = Tokens(
        billing=book.add("billing-bot", "agent", principal='Agent::"billing-bot"'),
        support=book.add("support-bot", "agent", principal='Agent::"support-bot"'),
        gateway=book.add("gateway", "pep"),
        alice=book.add("alice", "person", roles=frozenset({"approver"}), password=PASSWORD),
        bob=book.add("bob", "person", roles=frozenset({"approver"}), password=PASSWORD),
        admin=book.add("root", "person", roles=frozenset({"admin"}), password=PASSWORD),
        impostor=book.add("billing-bot-person", "person", roles=frozenset({"approver"})),
    )
    return path, tokens


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config_path(tmp_path: Path, accounts_file: tuple[Path, Tokens]) -> Path:
    return write_config(tmp_path, accounts_file[0])


@pytest.fixture
def tokens(accounts_file: tuple[Path, Tokens]) -> Tokens:
    return accounts_file[1]


@pytest.fixture
def client(config_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    app = create_app(load_config(config_path), clock=clock)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def links_config(tmp_path: Path, accounts_file: tuple[Path, Tokens]) -> Path:
    """A service whose messages wait for a person when a link in them is not the user's
    (`link_tools`), with the injection scanner on tool results."""
    return write_config(
        tmp_path,
        accounts_file[0],
        policies=str(links_bundle(tmp_path)),
        tools="link_tools:register",
        output_scanners=["injection"],
        trust={"billing-bot": ["user"]},
    )
