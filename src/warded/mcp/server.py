"""The downstream face: an MCP server (the SDK's low-level `Server`) in front of the gateway.

The SDK speaks both protocol generations to clients: the initialize
handshake (up to 2025-11-25) and the stateless 2026-07-28 protocol. Every
handler is wrapped so that no exception text reaches the client: an
unexpected error is logged and answered with a bare "Internal error".
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from warded.audit.record import new_id
from warded.mcp.forwarded import GatewayError
from warded.mcp.gateway import Gateway
from warded.mcp.trusted import carried
from warded.model import Principal

log = logging.getLogger("warded.mcp")

PrincipalOf = Callable[[ServerRequestContext[Any, Any]], Principal]
P = TypeVar("P")
R = TypeVar("R")
_NONCE = "warded.connection"
_SUBSCRIBED = "warded.subscribed"


def build_server(gateway: Gateway, principal_of: PrincipalOf) -> Server[Gateway]:
    """An MCP server whose handlers ask `gateway` as the principal `principal_of` names.

    Any request may carry trusted text in its `_meta` (`trusted.py`): it is taken
    (or the request refused) before the request is handled."""

    async def take_trusted(ctx: ServerRequestContext[Gateway, Any], params: Any) -> None:
        carrier = carried(params)
        if carrier is not None:
            await gateway.trust(principal_of(ctx), carrier)

    def _guarded(
        handler: Callable[[ServerRequestContext[Gateway, Any], P], Awaitable[R]],
        passes: type[MCPError] = GatewayError,
    ) -> Callable[[ServerRequestContext[Gateway, Any], P], Awaitable[R]]:
        return _guard(handler, passes, take_trusted)

    @contextlib.asynccontextmanager
    async def lifespan(_: Server[Gateway]) -> AsyncIterator[Gateway]:
        async with gateway.running():
            yield gateway

    async def list_tools(
        ctx: ServerRequestContext[Gateway, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal = principal_of(ctx)
        _attach(gateway, ctx, principal)
        return types.ListToolsResult(tools=gateway.tools(principal))

    async def call_tool(
        ctx: ServerRequestContext[Gateway, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        principal = principal_of(ctx)
        nonce = _attach(gateway, ctx, principal)
        return await gateway.call(
            principal, params.name, params.arguments, f"mcp:{nonce}:{ctx.request_id}"
        )

    async def list_resources(
        ctx: ServerRequestContext[Gateway, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        principal = principal_of(ctx)
        _attach(gateway, ctx, principal)
        return types.ListResourcesResult(resources=gateway.forwarded.resources(principal))

    async def list_templates(
        ctx: ServerRequestContext[Gateway, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        principal = principal_of(ctx)
        _attach(gateway, ctx, principal)
        found = gateway.forwarded.templates(principal)
        return types.ListResourceTemplatesResult(resource_templates=found)

    async def read_resource(
        ctx: ServerRequestContext[Gateway, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        principal = principal_of(ctx)
        nonce = _attach(gateway, ctx, principal)
        answer = await gateway.forwarded.read(
            principal, str(params.uri), f"mcp:{nonce}:{ctx.request_id}"
        )
        await gateway.after_call(principal)
        return answer

    async def subscribe(
        ctx: ServerRequestContext[Gateway, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        principal = principal_of(ctx)
        _attach(gateway, ctx, principal)
        connection = _connection(ctx)
        if connection is None:  # 2026-07-28 has no resources/subscribe
            raise GatewayError(types.METHOD_NOT_FOUND, "Method not found")
        key = id(connection)
        if _SUBSCRIBED not in connection.state:
            connection.state[_SUBSCRIBED] = True
            connection.exit_stack.push_async_callback(gateway.forwarded.forget, key)
        await gateway.forwarded.subscribe(
            principal, str(params.uri), key, connection.send_resource_updated
        )
        return types.EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Gateway, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        connection = _connection(ctx)
        if connection is not None:
            await gateway.forwarded.unsubscribe(str(params.uri), id(connection))
        return types.EmptyResult()

    async def list_prompts(
        ctx: ServerRequestContext[Gateway, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        principal = principal_of(ctx)
        _attach(gateway, ctx, principal)
        return types.ListPromptsResult(prompts=gateway.forwarded.prompts(principal))

    async def get_prompt(
        ctx: ServerRequestContext[Gateway, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        principal = principal_of(ctx)
        nonce = _attach(gateway, ctx, principal)
        answer = await gateway.forwarded.prompt(
            principal, params.name, params.arguments, f"mcp:{nonce}:{ctx.request_id}"
        )
        await gateway.after_call(principal)
        return answer

    async def listen(
        ctx: ServerRequestContext[Gateway, Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        return await gateway.listener(principal_of(ctx))(ctx, params)

    async def set_level(
        ctx: ServerRequestContext[Gateway, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        return types.EmptyResult()  # the gateway sends no log messages downstream

    upstreams = gateway.config.upstreams.values()
    resources = any(u.resources for u in upstreams)
    prompts = any(u.prompts for u in upstreams)
    server: Server[Gateway] = Server(
        "warded-mcp",
        version=_version(),
        title="warded MCP gateway",
        lifespan=lifespan,
        on_list_tools=_guarded(list_tools),
        on_call_tool=_guarded(call_tool),
        on_subscriptions_listen=_guarded(listen, passes=MCPError),  # the SDK's own answers
        on_list_resources=_guarded(list_resources) if resources else None,
        on_list_resource_templates=_guarded(list_templates) if resources else None,
        on_read_resource=_guarded(read_resource) if resources else None,
        on_subscribe_resource=_guarded(subscribe) if resources else None,
        on_unsubscribe_resource=_guarded(unsubscribe) if resources else None,
        on_list_prompts=_guarded(list_prompts) if prompts else None,
        on_get_prompt=_guarded(get_prompt) if prompts else None,
    )
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _guarded(set_level))
    return server


def initialization_options(server: Server[Gateway]) -> InitializationOptions:
    return server.create_initialization_options(NotificationOptions(tools_changed=True))


def _connection(ctx: ServerRequestContext[Any, Any]) -> Any:
    """A handshake-era connection (see `_attach`), or None for a stateless request."""
    connection = getattr(ctx.session, "_connection", None)
    if connection is None or connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    return connection


def _attach(gateway: Gateway, ctx: ServerRequestContext[Any, Any], principal: Principal) -> str:
    """A nonce for this connection; handshake-era connections are registered for list_changed.

    The SDK gives low-level handlers no public handle on the per-connection
    state (`Context.connection` exists, but the runner hands handlers a
    `ServerRequestContext`), so it is read off the request's session.
    """
    connection = _connection(ctx)
    if connection is None:
        return new_id()  # a stateless request: nothing lasts beyond it
    state = connection.state
    nonce = state.get(_NONCE)
    if nonce is None:
        nonce = state[_NONCE] = new_id()
        if connection.has_standalone_channel:
            detach = gateway.attach(principal, id(connection), connection.send_tool_list_changed)
            connection.exit_stack.callback(detach)
    return str(nonce)


def _guard(
    handler: Callable[[ServerRequestContext[Gateway, Any], P], Awaitable[R]],
    passes: type[MCPError],
    before: Callable[[ServerRequestContext[Gateway, Any], P], Awaitable[None]],
) -> Callable[[ServerRequestContext[Gateway, Any], P], Awaitable[R]]:
    """`handler` after `before`, whose errors reach the client only when they are `passes`
    (the gateway's own answers): anything else — an upstream's error text included — is
    logged and answered "Internal error"."""

    async def run(ctx: ServerRequestContext[Gateway, Any], params: P) -> R:
        try:
            await before(ctx, params)
            return await handler(ctx, params)
        except passes:
            raise
        except Exception:
            log.exception("%s failed", ctx.method)
            raise MCPError(types.INTERNAL_ERROR, "Internal error") from None

    return run


def _version() -> str:
    from importlib.metadata import version

    return version("warded")
