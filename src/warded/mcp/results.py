"""How a refusal or a failed tool looks to an MCP client.

A refusal is an `isError` tool result whose one text block is the gate's
neutral refusal (`Refusal.to_model()`, the same JSON every surface gives) and
whose `_meta["warded/refusal"]` carries the refusal's fields. It is never put
in `structuredContent`: clients validate that against the tool's output
schema (the TypeScript SDK rejects the whole result when it does not match),
and no clients validate an error result's text. `approval_required` comes
back the same way, with `approval_id` in both.

Those `_meta` keys are the gateway's own: an upstream's result reaches the
client without any `_meta` key in the `warded/` namespace (`upstream_result`),
so no upstream can make its answer look like a refusal or a failure of the
gateway's.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from pydantic import BaseModel

from warded.model import Refusal, ToolFailure

NAMESPACE = "warded/"  # the gateway's own `_meta` keys
REFUSAL_META = f"{NAMESPACE}refusal"
FAILURE_META = f"{NAMESPACE}failure"


def upstream_result(result: BaseModel) -> dict[str, Any]:
    """An upstream's result as JSON for the gate, its `_meta` keys of the gateway's own
    namespace left out."""
    body: dict[str, Any] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    meta = body.get("_meta")
    if isinstance(meta, dict):
        body["_meta"] = {k: v for k, v in meta.items() if not k.startswith(NAMESPACE)}
    return body


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
