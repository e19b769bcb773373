"""For the test servers: speak only the initialize handshake, as a handshake-era server does."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.shared.message import SessionMessage


async def handshake_only(read: Any, write: Any, outbound: Any) -> None:
    """Answer `server/discover` with "method not found"; pass every other message on."""
    async with outbound:
        async for item in read:
            message = getattr(item, "message", None)
            if isinstance(message, types.JSONRPCRequest) and message.method == "server/discover":
                error = types.ErrorData(code=types.METHOD_NOT_FOUND, message="Method not found")
                reply = types.JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
                await write.send(SessionMessage(reply))
                continue
            await outbound.send(item)
