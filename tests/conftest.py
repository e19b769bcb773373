"""Shared fixtures: the banking example bundle and a gate with its tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from support import TEST_KEY
from warded import Gate, MemoryStore, Principal, Session

ROOT = Path(__file__).resolve().parent.parent
BANKING = ROOT / "examples" / "banking" / "policies"
KNOWN_PAYEE = "GB33BUKB20201555555555"

# A property test means the same on an idle machine and a loaded one: no per-example
# time limit (hypothesis' default 200 ms fails examples that a busy CPU merely delays)
settings.register_profile("warded", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("warded")


@pytest.fixture
def banking_dir() -> Path:
    return BANKING


@pytest.fixture
def executed() -> list[tuple[str, dict[str, Any]]]:
    """Every tool execution, in order, as (tool, kwargs)."""
    return []


@pytest.fixture
def gate(executed: list[tuple[str, dict[str, Any]]]) -> Gate:
    """A gate over the banking policies with recording tools and an in-memory audit log."""
    g = Gate.from_directory(BANKING, store=MemoryStore(), key=TEST_KEY)
    register_banking_tools(g, executed)
    return g


def register_banking_tools(g: Gate, executed: list[tuple[str, dict[str, Any]]]) -> None:
    @g.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> dict[str, Any]:
        executed.append(
            ("send_money", {"recipient": recipient, "amount": amount, "subject": subject})
        )
        return {"status": "sent"}

    @g.tool
    def get_balance() -> float:
        executed.append(("get_balance", {}))
        return 100.0

    @g.tool
    def get_transactions(limit: int = 10) -> list[int]:
        executed.append(("get_transactions", {"limit": limit}))
        return list(range(limit))

    @g.tool(effect="external")
    def read_document(path: str) -> str:
        executed.append(("read_document", {"path": path}))
        return "text"

    @g.tool(effect="write", sensitive=["password"])
    def update_password(password: str) -> str:
        executed.append(("update_password", {"password": password}))
        return "changed"


@pytest.fixture
def billing() -> Principal:
    return Principal.agent("billing-bot")


@pytest.fixture
def support() -> Principal:
    return Principal.agent("support-bot")


@pytest.fixture
def session() -> Session:
    return Session("test-session")
