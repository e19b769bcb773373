"""One upstream MCP server, reached with the official SDK's `Client`.

The client negotiates the protocol itself (`mode="auto"`: the stateless
2026-07-28 protocol when the server speaks it, else the initialize
handshake). What the gateway never passes upstream: the downstream client's
roots, sampling or elicitation (no callbacks are registered, so none of
those capabilities are declared), its bearer token (an HTTP upstream gets
only the credential its own config names), and its environment (a stdio
upstream gets the SDK's minimal default environment plus its config's
`env`). Listings are not kept past a change: a `list_changed`
notification of tools, prompts or resources (or, on 2026-07-28, a
`subscriptions/listen` event) calls `on_change`, and the gateway lists
again. Every request waits at most the upstream's `timeout` for its answer
(the SDK's read timeout: then the request is cancelled upstream and fails
with REQUEST_TIMEOUT), so a hung upstream holds no call, listing or
connection attempt longer than that.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from warded.mcp.config import UpstreamConfig
from warded.mcp.pins import Definition


class _Page(Protocol):
    @property
    def next_cursor(self) -> str | None: ...


P = TypeVar("P", bound=_Page)  # a page of a listing
Item = TypeVar("Item")  # an item of it

log = logging.getLogger("warded.mcp")
MAX_PAGES = 100
DRAIN_SECONDS = 0.5  # how long a closed SSE response may take to end before its connection goes


class _KeepAlive(httpx2.AsyncBaseTransport):
    """Keeps the connection of a POST answered with SSE.

    The SDK client closes such a response as soon as its JSON-RPC response
    event arrived, before the server's end of the stream, so the connection
    cannot be reused and every call pays a new TCP connection. Servers end
    the stream right after that event; reading the rest before closing (off
    the caller's path: the response has been delivered by then) lets the
    pool keep the connection.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        sse = response.headers.get("content-type", "").startswith("text/event-stream")
        if request.method == "POST" and sse and isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = _Drained(response.stream)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Drained(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            yield part

    async def aclose(self) -> None:
        try:
            with anyio.move_on_after(DRAIN_SECONDS):
                async for _ in self._inner:
                    pass
        finally:
            with anyio.CancelScope(shield=True):
                await self._inner.aclose()


class Upstream:
    """A live connection to one upstream server."""

    def __init__(
        self,
        config: UpstreamConfig,
        on_change: Callable[[Upstream], Awaitable[None]],
        on_updated: Callable[[Upstream, str], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.id = config.id
        self._on_change = on_change
        self._on_updated = on_updated
        self._client: Client | None = None

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Upstream]:
        """Connect (and disconnect on exit); change events are watched meanwhile."""
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._client_for(stack))
            tasks = await stack.enter_async_context(anyio.create_task_group())
            self._client = client
            capabilities = client.server_capabilities
            changes = any(
                c is not None and c.list_changed
                for c in (capabilities.tools, capabilities.prompts, capabilities.resources)
            )
            if client.protocol_version in MODERN_PROTOCOL_VERSIONS and changes:
                tasks.start_soon(self._listen, client)
            try:
                yield self
            finally:
                self._client = None
                tasks.cancel_scope.cancel()

    def _client_for(self, stack: contextlib.AsyncExitStack) -> Client:
        c = self.config
        options: dict[str, Any] = {
            "mode": "auto",
            "cache": None,
            "message_handler": self._message,
            "read_timeout_seconds": c.timeout,
        }
        if c.transport == "stdio":
            assert c.command is not None
            params = StdioServerParameters(
                command=c.command,
                args=list(c.args),
                env=dict(c.env) or None,
                cwd=c.cwd,
            )
            return Client(params, **options)
        assert c.url is not None
        token = c.bearer()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(30.0, read=max(300.0, c.timeout)),
            transport=_KeepAlive(httpx2.AsyncHTTPTransport()),
        )
        stack.push_async_callback(http.aclose)
        return Client(streamable_http_client(c.url, http_client=http), **options)

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError(f"upstream {self.id} is not connected")
        return self._client

    @property
    def protocol_version(self) -> str:
        return self.client.protocol_version

    async def tools(self) -> list[types.Tool]:
        """Every tool the upstream lists now (all pages)."""
        return await self._all("tools/list", self.client.list_tools, lambda p: p.tools)

    async def _all(
        self,
        method: str,
        fetch: Callable[..., Awaitable[P]],
        items: Callable[[P], Sequence[Item]],
    ) -> list[Item]:
        """Every item of a paginated listing, following its cursors (at most MAX_PAGES)."""
        found: list[Item] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await fetch(cursor=cursor)
            found.extend(items(page))
            cursor = page.next_cursor
            if cursor is None:
                return found
        raise RuntimeError(f"upstream {self.id}: {method} did not end within {MAX_PAGES} pages")

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Forward one call; the upstream's own error results come back as they are."""
        return await self.client.session.call_tool(name, arguments)

    async def resources(self) -> list[types.Resource]:
        """Every resource the upstream lists now (all pages); none if it offers none."""
        if self.client.server_capabilities.resources is None:
            return []
        return await self._all("resources/list", self.client.list_resources, lambda p: p.resources)

    async def resource_templates(self) -> list[types.ResourceTemplate]:
        """Every resource template the upstream lists now (all pages); none if it offers
        none (a server with resources may not implement the method at all)."""
        if self.client.server_capabilities.resources is None:
            return []
        try:
            return await self._all(
                "resources/templates/list",
                self.client.list_resource_templates,
                lambda p: p.resource_templates,
            )
        except MCPError as exc:
            if exc.code == types.METHOD_NOT_FOUND:
                return []
            raise

    async def read(self, uri: str) -> types.ReadResourceResult:
        return await self.client.session.read_resource(uri)

    async def subscribe(self, uri: str, *, on: bool) -> None:
        """Subscribe to (or unsubscribe from) a resource's updates (handshake-era upstreams)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            if on:
                await self.client.session.subscribe_resource(uri)
            else:
                await self.client.session.unsubscribe_resource(uri)

    async def prompts(self) -> list[types.Prompt]:
        """Every prompt the upstream lists now (all pages); none if it offers none."""
        if self.client.server_capabilities.prompts is None:
            return []
        return await self._all("prompts/list", self.client.list_prompts, lambda p: p.prompts)

    async def prompt(self, name: str, arguments: dict[str, str]) -> types.GetPromptResult:
        return await self.client.session.get_prompt(name, arguments)

    async def _message(self, message: types.ServerNotification | Exception) -> None:
        if isinstance(
            message,
            types.ToolListChangedNotification
            | types.PromptListChangedNotification
            | types.ResourceListChangedNotification,
        ):
            await self._changed()
        elif isinstance(message, types.ResourceUpdatedNotification):
            if self._on_updated is not None:
                try:
                    await self._on_updated(self, str(message.params.uri))
                except Exception:
                    log.exception("upstream %s: forwarding a resource update failed", self.id)
        elif isinstance(message, Exception):
            log.warning("upstream %s: transport error: %s", self.id, type(message).__name__)

    async def _listen(self, client: Client) -> None:
        try:
            async with client.listen(
                tools_list_changed=True, prompts_list_changed=True, resources_list_changed=True
            ) as events:
                async for _ in events:
                    await self._changed()
        except Exception as exc:
            log.warning("upstream %s: change stream ended: %s", self.id, type(exc).__name__)

    async def _changed(self) -> None:
        try:
            await self._on_change(self)
        except Exception:
            log.exception("upstream %s: handling a list change failed", self.id)


@dataclass(frozen=True, slots=True)
class Listing:
    """What one upstream offers: its tools, and its prompts, resources and resource
    templates where the config forwards them."""

    tools: list[types.Tool]
    prompts: list[types.Prompt]
    resources: bool
    readable: list[types.Resource | types.ResourceTemplate] = field(default_factory=list)

    def definitions(self) -> list[Definition]:
        """Everything in it that is pinned (`pins.py`)."""
        return [*self.tools, *self.prompts, *self.readable]


async def list_all(
    configs: Mapping[str, UpstreamConfig], *, readable: bool = False
) -> dict[str, Listing]:
    """Connect to every upstream once and return what each lists (for `pin` and `schema`):
    its tools and forwarded prompts, and with `readable` its forwarded resources and
    templates too (`pin` vets them; `schema` does not need them)."""

    async def ignore(_: Upstream) -> None:
        return None

    listed: dict[str, Listing] = {}
    for uid, config in configs.items():
        async with Upstream(config, ignore).connect() as upstream:
            tools = await upstream.tools()
            prompts = await upstream.prompts() if config.prompts else []
            offered: list[types.Resource | types.ResourceTemplate] = []
            if readable and config.resources:
                offered += await upstream.resources()
                offered += await upstream.resource_templates()
            listed[uid] = Listing(tools, prompts, config.resources, offered)
    return listed
