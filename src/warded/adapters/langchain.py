"""LangChain: gate tools as LangChain tools, and LangChain tools behind the gate.

Three lines in an existing agent loop:

    tools = LangChainTools(gate, principal, session)
    ai = model.bind_tools(tools.tools()).invoke(messages)
    messages += tools.handle(ai)

`tools()` are `BaseTool`s (sync and async) that also work on their own, e.g.
in LangGraph's `ToolNode`: invoked with a tool call they answer with a
`ToolMessage` whose `status` is `"error"` for a refusal or a tool failure
and whose `artifact` is what `gate.call` returned; a refusal is the tool's
output, never an exception. `handle` answers every tool call of an
`AIMessage`, including calls to names the model was never offered and calls
whose arguments LangChain could not parse, by asking the gate (which refuses
them and records the attempt).

`register(gate, tool)` puts an existing LangChain tool behind the gate: the
gate lists it, decides every call, and only then runs it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Annotated, Any

try:
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.tools import BaseTool, StructuredTool
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from langchain_core.utils.pydantic import get_fields
    from pydantic import BaseModel, ConfigDict, Field, SkipValidation
except ImportError as exc:
    raise ImportError(
        "warded.adapters.langchain needs langchain-core: pip install 'warded[langchain]'"
    ) from exc

from warded.adapters.binding import Binding
from warded.adapters.text import decode_arguments, is_error, model_text
from warded.errors import ToolDefinitionError
from warded.gate import Gate
from warded.model import ToolSpec
from warded.tools import ResourceRule, Tool, model_arguments


class GateTool(BaseTool):
    """One gate tool for one principal in one session, as a LangChain tool."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    binding: Annotated[Binding, SkipValidation] = Field(exclude=True)

    def _to_args_and_kwargs(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # The gate validates the arguments; LangChain hands them over untouched.
        return (tool_input, tool_call_id), {}

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        tool_input, call_id = args
        result = self.binding.call(self.name, tool_input, call_id)
        return model_text(result) if call_id is None else _message(self.name, call_id, result)

    async def _arun(self, *args: Any, **kwargs: Any) -> Any:
        tool_input, call_id = args
        result = await self.binding.acall(self.name, tool_input, call_id)
        return model_text(result) if call_id is None else _message(self.name, call_id, result)


class LangChainTools(Binding):
    """The tools one principal may see in one session, and their calls, for LangChain."""

    def tools(self) -> list[BaseTool]:
        """The visible tools as LangChain tools, for `bind_tools` or a tool node."""
        return [self._tool(spec) for spec in self.specs()]

    def handle(self, message: AIMessage) -> list[ToolMessage]:
        """Run every tool call of the message through the gate; one `ToolMessage` each."""
        return [_message(n, i, self.call(n, a, i)) for i, n, a in _calls(message)]

    async def ahandle(self, message: AIMessage) -> list[ToolMessage]:
        """`handle` through `gate.acall`."""
        return [_message(n, i, await self.acall(n, a, i)) for i, n, a in _calls(message)]

    def _tool(self, spec: ToolSpec) -> GateTool:
        return GateTool(
            name=spec.name,
            description=spec.description,
            args_schema=copy.deepcopy(dict(spec.parameters)),
            binding=self,
        )


def register(
    gate: Gate,
    tool: BaseTool,
    *,
    effect: str = "read",
    resource: ResourceRule | None = None,
    sensitive: Sequence[str] = (),
    labels: Sequence[str] = (),
) -> Tool:
    """Register an existing LangChain tool with the gate, under its own name.

    The gate takes the JSON Schema LangChain would show a model; a call the
    gate allows runs `tool.invoke(arguments)` (`tool.ainvoke` for a tool that
    only has a coroutine). Tools with injected arguments (`InjectedToolArg`,
    `InjectedToolCallId`) are refused with ToolDefinitionError: the gate
    passes the model's arguments only. So are tools with arguments whose
    default is made by a `default_factory` (LangChain would make it after the
    gate decided, unseen by the policy), except the empty containers (`list`,
    `dict`, `set`, `tuple`, `frozenset`), which the gate fills in itself. A
    call leaving out a field of a nested model that has a default (plain or
    made) is invalid_arguments naming it: LangChain would fill it unseen. So
    tools whose arguments are a pydantic v1 model are refused.
    """
    parameters = convert_to_openai_tool(tool)["function"]["parameters"]
    model = None if isinstance(tool.args_schema, dict) else tool.get_input_schema()
    if model is not None and not issubclass(model, BaseModel):
        raise ToolDefinitionError(
            f"LangChain tool {tool.name!r}: its arguments are a pydantic v1 model, whose "
            "defaults the gate cannot check; use a pydantic 2 model"
        )
    declared = {} if model is None else get_fields(model)
    properties = parameters.get("properties", {})
    injected = set(declared) - set(properties)
    if injected:
        raise ToolDefinitionError(
            f"LangChain tool {tool.name!r} has injected arguments ({', '.join(sorted(injected))})"
        )
    hidden = []
    for name, field in declared.items():
        factory = field.default_factory
        if factory is None or "default" in properties[name]:
            continue
        if factory in _EMPTY:
            properties[name]["default"] = {} if factory is dict else []
        else:
            hidden.append(name)
    if hidden:
        raise ToolDefinitionError(
            f"LangChain tool {tool.name!r}: the defaults of {', '.join(sorted(hidden))} are made "
            "when it runs, after the gate decided; give them a plain default (or none)"
        )

    def run(**kwargs: Any) -> Any:
        return tool.invoke(kwargs)

    async def arun(**kwargs: Any) -> Any:
        return await tool.ainvoke(kwargs)

    async_only = isinstance(tool, StructuredTool) and tool.func is None
    return gate.register(
        tool.name,
        parameters,
        arun if async_only else run,
        description=tool.description,
        effect=effect,
        resource=resource,
        sensitive=sensitive,
        labels=labels,
        convert=None if model is None else model_arguments(model),
    )


_EMPTY = (list, dict, set, tuple, frozenset)  # default factories the gate fills in as JSON


def _calls(message: AIMessage) -> list[tuple[str | None, str, Any]]:
    """(call id, tool name, arguments) of every tool call, parsed or not."""
    calls: list[tuple[str | None, str, Any]] = [
        (c["id"], c["name"], c["args"]) for c in message.tool_calls
    ]
    calls += [
        (c["id"], c["name"] or "", decode_arguments(c["args"] or ""))
        for c in message.invalid_tool_calls
    ]
    return calls


def _message(name: str, call_id: str | None, result: Any) -> ToolMessage:
    return ToolMessage(
        content=model_text(result),
        tool_call_id=call_id or "",
        name=name,
        status="error" if is_error(result) else "success",
        artifact=result,
    )
