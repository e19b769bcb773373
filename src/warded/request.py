"""The pieces of a Cedar request that the gate builds from a call."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from warded.model import SessionState
from warded.policy.bundle import PolicyBundle
from warded.tools import Tool

MAX_NAME = 128


def build_context(args: Any, session: SessionState, now: float) -> dict[str, Any]:
    """The Cedar context warded provides to every action (see `CONTEXT_CONTRACT`)."""
    t = time.gmtime(now)
    return {
        "args": args,
        "session": {"id": session.id, "labels": sorted(session.labels), "calls": session.calls},
        "now": {"epoch": int(now), "hour": t.tm_hour, "weekday": t.tm_wday + 1},
    }


def resource_of(tool: Tool, value: Mapping[str, Any], bundle: PolicyBundle) -> dict[str, str]:
    """The call's resource: the tool's rule applied to the frozen arguments, or the tool itself.

    The default is `Tool::"<name>"` in the namespace of the tool's action.
    """
    if tool.resource is None:
        action = bundle.actions.get(tool.name)
        namespace = action[0][: -len("Action")] if action else ""
        return {"type": f"{namespace}Tool", "id": tool.name}
    entity_type, entity_id = tool.resource(value)
    if not isinstance(entity_type, str) or not isinstance(entity_id, str):
        raise TypeError("resource rule must return (type, id) strings")
    return {"type": entity_type, "id": entity_id}


def instant(value: object) -> float:
    """A clock reading: a finite number of seconds, or TypeError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"clock returned {type(value).__name__}, not a finite number of seconds")
    return float(value)


def printable(name: object) -> str:
    """A requested tool name as the audit log can hold it: a bounded, valid UTF-8 string."""
    if not isinstance(name, str):
        return f"<{type(name).__name__}>"
    return utf8(name[:MAX_NAME])


def utf8(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
