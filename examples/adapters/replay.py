"""Recorded model responses served to the SDK's own HTTP client, offline.

`recorded/*.json` hold response bodies in each API's wire format, written
for these examples (not captured from a live model). The SDK sends its real
request through an `httpx2.MockTransport` (httpx2 is the HTTP client the SDKs
use), which answers with the next body; the SDK parses it as it would a live
answer. Each request is printed with the tools it offered the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2

RECORDED = Path(__file__).parent / "recorded"


class Replay(httpx2.MockTransport):
    """An httpx2 transport answering each request with the next recorded body."""

    def __init__(self, name: str) -> None:
        self.bodies: list[Any] = json.loads((RECORDED / f"{name}.json").read_text())
        self.requests: list[dict[str, Any]] = []
        super().__init__(self._answer)

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        sent = json.loads(request.content)
        self.requests.append(sent)
        if len(self.requests) > len(self.bodies):
            raise RuntimeError(f"no recorded response left for request {len(self.requests)}")
        offered = sorted(_tool_name(t) for t in sent.get("tools", []))
        print(f"[model request {len(self.requests)}] tools offered: {', '.join(offered)}")
        return httpx2.Response(200, json=self.bodies[len(self.requests) - 1])


def _tool_name(tool: dict[str, Any]) -> str:
    return str(tool["function"]["name"] if "function" in tool else tool["name"])
