"""An MCP server that accepts requests and never answers them (stdio, the initialize
handshake), for the gateway's timeout tests.

`hang` waits for the `release` event (its `amount` is for a budget); `entered` answers
once a `hang` call has arrived; `release` sets the event, ending every wait. `freeze`
makes every listing, read and prompt get wait for it too, says the tool, prompt and
resource lists changed, and answers once a frozen request has arrived; `arrivals`
answers how many frozen requests have arrived. It lists one
resource, `stuck://note`, one template, `stuck://notes/{id}`, and one prompt, `greet`.
Run: python stuck.py
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from handshake import handshake_only
from mcp.server import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.stdio import stdio_server

release = anyio.Event()
hanging = anyio.Event()  # a `hang` call arrived
frozen = {"on": False}
stuck = anyio.Event()  # a frozen request arrived
arrived = {"count": 0}
AMOUNT = {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}
NONE: dict[str, Any] = {"type": "object", "properties": {}}


def text(value: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=value)])


async def unless_frozen() -> None:
    if frozen["on"]:
        arrived["count"] += 1
        stuck.set()
        await release.wait()


async def list_tools(ctx, params) -> types.ListToolsResult:  # type: ignore[no-untyped-def]
    await unless_frozen()
    tools = [types.Tool(name="hang", description="Wait.", input_schema=AMOUNT)]
    tools += [
        types.Tool(name=n, description=f"The {n} tool.", input_schema=NONE)
        for n in ("entered", "release", "freeze", "arrivals")
    ]
    return types.ListToolsResult(tools=tools)


async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:  # type: ignore[no-untyped-def]
    match params.name:
        case "hang":
            hanging.set()
            await release.wait()
            return text("released")
        case "entered":
            await hanging.wait()
            return text("a hang call arrived")
        case "arrivals":
            return text(str(arrived["count"]))
        case "release":
            release.set()
            return text("released every wait")
        case "freeze":
            frozen["on"] = True
            await ctx.session.send_tool_list_changed()
            await ctx.session.send_prompt_list_changed()
            await ctx.session.send_resource_list_changed()
            await stuck.wait()
            return text("a frozen request arrived")
    return types.CallToolResult(content=[types.TextContent(type="text", text="?")], is_error=True)


async def list_resources(ctx, params) -> types.ListResourcesResult:  # type: ignore[no-untyped-def]
    await unless_frozen()
    return types.ListResourcesResult(resources=[types.Resource(uri="stuck://note", name="note")])


async def list_templates(ctx, params) -> types.ListResourceTemplatesResult:  # type: ignore[no-untyped-def]
    await unless_frozen()
    template = types.ResourceTemplate(uri_template="stuck://notes/{id}", name="notes")
    return types.ListResourceTemplatesResult(resource_templates=[template])


async def read_resource(ctx, params) -> types.ReadResourceResult:  # type: ignore[no-untyped-def]
    await unless_frozen()
    contents = types.TextResourceContents(uri=params.uri, text="a note")
    return types.ReadResourceResult(contents=[contents])


async def list_prompts(ctx, params) -> types.ListPromptsResult:  # type: ignore[no-untyped-def]
    await unless_frozen()
    return types.ListPromptsResult(prompts=[types.Prompt(name="greet", description="Greet.")])


async def get_prompt(ctx, params) -> types.GetPromptResult:  # type: ignore[no-untyped-def]
    await unless_frozen()
    message = types.PromptMessage(role="user", content=types.TextContent(type="text", text="hi"))
    return types.GetPromptResult(messages=[message])


server = Server(
    "stuck",
    on_list_tools=list_tools,
    on_call_tool=call_tool,
    on_list_resources=list_resources,
    on_list_resource_templates=list_templates,
    on_read_resource=read_resource,
    on_list_prompts=list_prompts,
    on_get_prompt=get_prompt,
)


async def main() -> None:
    async with stdio_server() as (read, write), anyio.create_task_group() as tasks:
        changes = NotificationOptions(
            tools_changed=True, prompts_changed=True, resources_changed=True
        )
        options = server.create_initialization_options(changes)
        outbound, inbound = anyio.create_memory_object_stream[Any](100)
        tasks.start_soon(handshake_only, read, write, outbound)
        await server.run(inbound, write, options)
        tasks.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
