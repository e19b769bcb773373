"""`warded mcp`: run the MCP gateway, pin upstream definitions, generate the Cedar schema.

    warded mcp serve CONFIG [--principal NAME]   stdio, one client (Claude Desktop, Cursor)
    warded mcp serve CONFIG --http [--port N]    Streamable HTTP, bearer credentials per agent
    warded mcp schema CONFIG [-o FILE]           Cedar actions for every upstream tool
    warded mcp pin CONFIG [--allow-flagged]      pin every upstream tool, prompt, resource...
    warded mcp token PRINCIPAL                   a new bearer credential and its config lines

The gateway reloads its policies and pins and lists its upstreams again on SIGHUP.
Needs the `mcp` extra: `pip install 'warded[mcp]'`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from warded.cli.common import Failure, _Group
from warded.links import printable

if TYPE_CHECKING:
    from warded.mcp.config import GatewayConfig
    from warded.mcp.gateway import Gateway

_CONFIG = click.argument(
    "config", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="CONFIG"
)


@click.group(cls=_Group)
def mcp() -> None:
    """The MCP gateway: every tool call of any MCP client goes through the gate."""


def _load(path: Path) -> GatewayConfig:
    try:
        from warded.mcp.config import load
    except ImportError as exc:
        raise Failure(str(exc)) from None
    return load(path)


@mcp.command()
@_CONFIG
@click.option("--principal", "-p", help="The principal of a stdio client (default: [stdio]).")
@click.option("--http", "use_http", is_flag=True, help="Serve Streamable HTTP instead of stdio.")
@click.option("--host", help="HTTP host (default: [http] host).")
@click.option("--port", type=int, help="HTTP port (default: [http] port; 0 picks a free one).")
def serve(
    config: Path, principal: str | None, use_http: bool, host: str | None, port: int | None
) -> None:
    """Run the gateway in front of the configured upstream servers."""
    from dataclasses import replace

    from warded.mcp.gateway import open_gateway

    conf = _load(config)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="warded-mcp: %(message)s")
    if use_http:
        if principal is not None:
            raise Failure("--principal is for stdio; over HTTP each credential names its principal")
        http = replace(
            conf.http, host=host or conf.http.host, port=conf.http.port if port is None else port
        )
        conf = replace(conf, http=http)
        if not conf.credentials and conf.http.anonymous is None:
            raise Failure(f"{config}: Streamable HTTP needs [[credentials]] (`warded mcp token`)")
        gateway = open_gateway(conf)
        asyncio.run(_serve_http(gateway, conf))
        return
    who = conf.principal(principal) if principal is not None else conf.stdio_principal
    if who is None:
        raise Failure(f"{config}: name the stdio principal with [stdio] principal or --principal")
    gateway = open_gateway(conf)
    asyncio.run(_serve_stdio(gateway, who))


async def _serve_stdio(gateway: Gateway, principal: Any) -> None:
    from warded.mcp.stdio import serve_stdio

    with _reload_on_hangup(gateway):
        await serve_stdio(gateway, principal)


async def _serve_http(gateway: Gateway, config: GatewayConfig) -> None:
    from warded.mcp.http import bind, serve_http

    sock = bind(config)
    host, port = sock.getsockname()[:2]
    click.echo(f"warded mcp: serving http://{host}:{port}{config.http.path}", err=True)
    with _reload_on_hangup(gateway):
        await serve_http(gateway, config, sock)


@contextlib.contextmanager
def _reload_on_hangup(gateway: Gateway) -> Any:
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    def hangup() -> None:
        task = loop.create_task(_reload(gateway))
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


async def _reload(gateway: Gateway) -> None:
    from warded.errors import BundleError

    try:
        version = await gateway.reload()
        await gateway.resync()
    except BundleError as exc:
        click.echo(f"warded mcp: reload rejected, the running policies stay: {exc}", err=True)
        return
    except Exception as exc:
        click.echo(f"warded mcp: reload failed: {type(exc).__name__}: {exc}", err=True)
        return
    click.echo(f"warded mcp: reloaded, bundle {version}", err=True)


@mcp.command()
@_CONFIG
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
def schema(config: Path, output: Path | None) -> None:
    """Print the Cedar schema (actions and argument types) of every upstream tool."""
    from warded.mcp.schema import cedar_schema
    from warded.mcp.upstream import list_all

    conf = _load(config)
    text = cedar_schema(conf, asyncio.run(list_all(conf.upstreams)))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@mcp.command()
@_CONFIG
@click.option("--allow-flagged", is_flag=True, help="Pin definitions that were flagged.")
def pin(config: Path, allow_flagged: bool) -> None:
    """Pin every upstream definition (tools, and the prompts, resources and resource
    templates the config forwards); flagged ones are refused unless allowed."""
    from warded.mcp.pins import Definition, Pins, flags, kind_of, name_of, pin_of
    from warded.mcp.upstream import list_all

    conf = _load(config)
    if conf.pins is None:
        raise Failure(f'{config}: set `pins = "FILE"` in the config to pin upstream definitions')
    listed = asyncio.run(list_all(conf.upstreams, readable=True))
    chosen: list[tuple[str, Definition]] = []
    flagged = []
    for uid, listing in listed.items():
        for item in listing.definitions():
            kind = kind_of(item)
            name = name_of(uid, item)
            if name is None:  # names and URIs come from the upstream: printed escaped
                shown = printable(getattr(item, "name", ""))
                click.echo(f"skipped {uid}: {kind} name {shown!r} cannot be exposed", err=True)
                continue
            found = flags(item)
            for line in found:  # a path holds the upstream's property names
                click.echo(f"flagged {kind} {printable(name)}: {printable(line)}", err=True)
            if found and not allow_flagged:
                flagged.append(f"{kind} {printable(name)}")
                continue
            chosen.append((name, item))
            click.echo(f"pinned  {kind} {printable(name)}  {pin_of(item)[:16]}")
    Pins.write(conf.pins, chosen)
    click.echo(f"wrote {conf.pins}: {len(chosen)} definitions", err=True)
    if flagged:
        raise Failure(
            f"not pinned (flagged): {', '.join(flagged)}; read them, then --allow-flagged to pin"
        )


@mcp.command()
@click.argument("principal")
@click.option("--expires", help="An expiry time for the config, e.g. 2027-01-01T00:00:00Z.")
def token(principal: str, expires: str | None) -> None:
    """Make a bearer credential for PRINCIPAL: the token (give it to the agent) and config lines."""
    from warded.mcp.http import token_hash

    secret = "wmcp_" + secrets.token_urlsafe(32)
    click.echo(f"token (give it to the agent; it is not stored): {secret}", err=True)
    click.echo("[[credentials]]")
    click.echo(f"principal = {_toml_string(principal)}")
    click.echo(f'sha256 = "{token_hash(secret)}"')
    if expires:
        click.echo(f"expires = {expires}")


def _toml_string(text: str) -> str:
    import json

    return json.dumps(text)
