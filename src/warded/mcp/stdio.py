"""The stdio front: one client, one principal per process (Claude Desktop, Cursor, …).

The SDK's `stdio_server` reads stdin and writes stdout through worker
threads (a thread round trip for every line read, every write and every
flush), which on a busy machine cost more than everything else a call
through the gateway does. When stdin and stdout are pipes, sockets or
terminals (they are, under every MCP client), the gateway reads and writes
them on the event loop instead, and hands those streams to the SDK. As the
SDK does, it serves the wire from private duplicates of fd 0 and 1 and
points fd 0 at /dev/null and fd 1 at stderr meanwhile, so nothing else in
the process can read a request or write into a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.stdio import stdio_server

from warded.mcp.gateway import Gateway
from warded.mcp.server import build_server, initialization_options
from warded.model import Principal

LINE_LIMIT = 1 << 26  # the longest JSON-RPC message line read from the client (64 MiB)


async def serve_stdio(gateway: Gateway, principal: Principal) -> None:
    """Serve one MCP client on stdin/stdout as `principal` until it disconnects."""
    server = build_server(gateway, lambda ctx: principal)
    async with _std_streams() as streams, stdio_server(*streams) as (read, write):
        await server.run(read, write, initialization_options(server))


class _Lines:
    """The lines of a pipe as text, for `async for`."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Output:
    """A pipe written as text; `flush` waits until the pipe has taken what was written."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


@contextlib.asynccontextmanager
async def _std_streams() -> AsyncIterator[tuple[Any, Any]]:
    """(stdin lines, stdout) on the event loop, or (None, None) for the SDK's own threads."""
    loop = asyncio.get_running_loop()
    wire_in = os.fdopen(os.dup(0), "rb", buffering=0)
    wire_out = os.fdopen(os.dup(1), "wb", buffering=0)
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    read_transport: asyncio.ReadTransport | None = None
    try:
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), wire_in
        )
        write_transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, wire_out
        )
    except (OSError, ValueError):  # a regular file, say: not something the loop can watch
        if read_transport is not None:
            read_transport.close()
        wire_in.close()
        wire_out.close()
        yield None, None
        return
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    saved_in, saved_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    try:
        yield _Lines(reader), _Output(writer)
    finally:
        read_transport.close()
        write_transport.close()
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)
