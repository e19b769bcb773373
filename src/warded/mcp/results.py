"""How a refusal or a failed tool looks to an MCP client.

A refusal is an `isError` tool result whose one text block is the gate's
neutral refusal (`Refusal.to_model()`, the same JSON every surface gives) and
whose `_meta["warded/refusal"]` carries the refusal's fields. It is never put
in `structuredContent`: clients validate that against the tool's output
schema (the TypeScript SDK rejects the whole result when it does not match),
and no clients validate an error result's text. `approval_required` comes
back the same way, with `approval_id` in both.
"""

from __future__ import annotations

import mcp_types as types

from warded.model import Refusal, ToolFailure

REFUSAL_META = "warded/refusal"
FAILURE_META = "warded/failure"


def refused(refusal: Refusal) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=refusal.to_model())],
        is_error=True,
        _meta={REFUSAL_META: refusal.to_dict()},
    )


def failed(failure: ToolFailure) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=failure.to_model())],
        is_error=True,
        _meta={FAILURE_META: failure.to_dict()},
    )
