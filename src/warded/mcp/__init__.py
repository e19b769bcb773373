"""The MCP gateway: `warded mcp …` between any MCP client and upstream MCP servers.

Needs the `mcp` extra (`pip install 'warded[mcp]'`). See docs/mcp.md.
"""

try:
    import mcp as _sdk  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the MCP gateway needs the MCP SDK: install the extra with `pip install 'warded[mcp]'`"
    ) from exc

from warded.mcp.config import GatewayConfig, GatewayConfigError, load
from warded.mcp.gateway import Gateway, open_gateway

__all__ = ["Gateway", "GatewayConfig", "GatewayConfigError", "load", "open_gateway"]
