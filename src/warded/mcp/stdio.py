"""The stdio front: one client, one principal per process (Claude Desktop, Cursor, …)."""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from warded.mcp.gateway import Gateway
from warded.mcp.server import build_server, initialization_options
from warded.model import Principal


async def serve_stdio(gateway: Gateway, principal: Principal) -> None:
    """Serve one MCP client on stdin/stdout as `principal` until it disconnects."""
    server = build_server(gateway, lambda ctx: principal)
    async with stdio_server() as (read, write):
        await server.run(read, write, initialization_options(server))
