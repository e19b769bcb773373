"""What every adapter holds: a gate, the principal the model acts as, and its session."""

from __future__ import annotations

from typing import Any

from warded.gate import Gate
from warded.model import Principal, Session, ToolSpec


class Binding:
    """One principal in one session, in front of a gate."""

    def __init__(self, gate: Gate, principal: Principal, session: Session) -> None:
        self.gate = gate
        self.principal = principal
        self.session = session

    def specs(self) -> list[ToolSpec]:
        """The tools the gate lists for this principal in this session, now."""
        return self.gate.tools(self.principal, self.session)

    def call(self, name: str, args: Any, call_id: str | None) -> Any:
        """`gate.call` for this principal and session: the result, a Refusal or a ToolFailure."""
        return self.gate.call(self.principal, name, args, self.session, call_id=call_id)

    async def acall(self, name: str, args: Any, call_id: str | None) -> Any:
        """`gate.acall` for this principal and session."""
        return await self.gate.acall(self.principal, name, args, self.session, call_id=call_id)
