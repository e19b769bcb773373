"""OpenAI Agents SDK: the gate's tools as its function tools.

Three lines in an existing agent:

    agent = Agent(name=..., instructions=..., tools=function_tools(gate, principal, session))

(with the tool functions registered on the gate instead of `@function_tool`).
Each tool call runs through `gate.acall` with the SDK's tool-call id as the
call id, so a resent id runs at most once; a refusal is the tool's output the
model sees. The SDK runs the calls of one response concurrently. Each tool is
enabled only while the gate still lists it for the session, so a tool taken
away mid-run (untrusted content entered the session) is gone from the next
model request of the same run. Build the list again after a policy reload
that adds tools.
"""

from __future__ import annotations

from typing import Any

try:
    from agents import AgentBase, FunctionTool, RunContextWrapper
    from agents.tool_context import ToolContext
except ImportError as exc:
    raise ImportError(
        "warded.adapters.agents needs the OpenAI Agents SDK: pip install 'warded[agents]'"
    ) from exc

from warded.adapters.binding import Binding
from warded.adapters.strict import strict_parameters
from warded.adapters.text import decode_arguments, model_text
from warded.gate import Gate
from warded.model import Principal, Session, ToolSpec


def function_tools(gate: Gate, principal: Principal, session: Session) -> list[FunctionTool]:
    """The tools the principal may see in the session, as Agents SDK function tools."""
    binding = Binding(gate, principal, session)
    return [_function_tool(binding, spec) for spec in binding.specs()]


def _function_tool(binding: Binding, spec: ToolSpec) -> FunctionTool:
    parameters, strict = strict_parameters(spec.parameters)

    async def invoke(context: ToolContext[Any], arguments: str) -> str:
        args = decode_arguments(arguments)
        return model_text(await binding.acall(spec.name, args, context.tool_call_id))

    def listed(context: RunContextWrapper[Any], agent: AgentBase[Any]) -> bool:
        return any(s.name == spec.name for s in binding.specs())

    return FunctionTool(
        name=spec.name,
        description=spec.description,
        params_json_schema=parameters,
        on_invoke_tool=invoke,
        strict_json_schema=strict,
        is_enabled=listed,
    )
