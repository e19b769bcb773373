"""Tools the test service runs (configured as `tools: service_tools:register`).

`EXECUTED` records every execution, in order, across all test apps in this process.
"""

from __future__ import annotations

from typing import Any

from warded import Gate

EXECUTED: list[tuple[str, dict[str, Any]]] = []


def register(gate: Gate) -> None:
    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> dict[str, Any]:
        """Send money to a recipient IBAN."""
        EXECUTED.append(("send_money", {"recipient": recipient, "amount": amount}))
        return {"status": "sent", "amount": amount}

    @gate.tool
    def get_balance() -> float:
        """The account balance."""
        EXECUTED.append(("get_balance", {}))
        return 100.0

    @gate.tool
    def get_transactions(limit: int = 10) -> list[int]:
        """Recent transactions."""
        return list(range(limit))

    @gate.tool(effect="external", labels=["untrusted"])
    def read_document(path: str) -> str:
        """Read a document from outside."""
        return "invoice text"

    @gate.tool(effect="write", sensitive=["password"])
    def update_password(password: str) -> str:
        """Change the password."""
        return "changed"
