"""The Streamable HTTP front: many agents, each known by its bearer credential.

Credentials are per agent, stored in the config as the SHA-256 of a random
token (`warded mcp token` makes one). A request with a missing, unknown or
expired credential gets 401 with a `WWW-Authenticate` header pointing at the
protected-resource metadata (RFC 9728) that the MCP authorization spec
describes, served at `/.well-known/oauth-protected-resource<path>`. The SDK's
session manager binds an MCP session to the credential that opened it: a
request bearing another credential gets the same 404 as an unknown session.
The client's token is never sent upstream.

Responses are plain JSON, not a one-event SSE stream: a client reads a JSON
body to its end and keeps the connection, where the SDK clients close an
SSE response after its one event, and with it the connection (a new TCP
connection per call). Notifications (`list_changed`) go on the standalone
GET stream (handshake era) or `subscriptions/listen` (2026-07-28).
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerRequestContext
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from warded.mcp.config import LOOPBACK, Credential, GatewayConfig, HttpConfig
from warded.mcp.gateway import Gateway
from warded.mcp.server import build_server
from warded.model import Principal


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class CredentialVerifier:
    """The SDK's `TokenVerifier` over the config's hashed credentials."""

    def __init__(self, credentials: tuple[Credential, ...], now: Callable[[], float] = time.time):
        self._by_hash = {c.sha256: c for c in credentials}
        self._now = now

    async def verify_token(self, token: str) -> AccessToken | None:
        found = self._by_hash.get(token_hash(token))
        if found is None or (found.expires is not None and found.expires <= self._now()):
            return None
        return AccessToken(
            token=token,
            client_id=found.name,  # the session binding compares it: one credential, one owner
            scopes=[],
            expires_at=None if found.expires is None else int(found.expires),
            subject=str(found.principal),
        )


def principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """The principal of the credential that authenticated this request."""
    user = ctx.request.scope.get("user") if ctx.request is not None else None
    if not isinstance(user, AuthenticatedUser) or user.access_token.subject is None:
        raise PermissionError("request without an authenticated credential")
    return Principal.parse(user.access_token.subject)


def transport_security(http: HttpConfig) -> TransportSecuritySettings | None:
    """DNS-rebinding protection: the Host and Origin headers a request may carry.

    On a loopback host, the loopback names (as the SDK does by default); with
    `public_url`, also its host, which a TLS proxy in front forwards. None
    (no check) only for a non-loopback host with no public URL.
    """
    hosts: list[str] = []
    origins: list[str] = []
    if http.host in LOOPBACK:
        hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*"]
        origins += ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    if http.public_url:
        public = urlsplit(http.public_url)
        hosts.append(public.netloc)
        origins.append(f"{public.scheme}://{public.netloc}")
    if not hosts:
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def http_app(gateway: Gateway, config: GatewayConfig, *, port: int | None = None) -> Starlette:
    """The ASGI app: the MCP endpoint behind bearer authentication, and its metadata.

    With `[http] anonymous` (loopback only) there is no authentication: every
    request acts as that principal.
    """
    anonymous = config.http.anonymous
    if anonymous is not None:
        open_server = build_server(gateway, lambda ctx: anonymous)
        return open_server.streamable_http_app(
            streamable_http_path=config.http.path,
            host=config.http.host,
            json_response=True,
            transport_security=transport_security(config.http),
        )
    server = build_server(gateway, principal_of)
    resource = config.http.resource_url(port)
    auth = AuthSettings(
        issuer_url=config.http.issuer or resource,  # type: ignore[arg-type]
        resource_server_url=resource,  # type: ignore[arg-type]
        validate_token_resource=False,  # credentials are the gateway's own, not an AS's tokens
    )
    return server.streamable_http_app(
        streamable_http_path=config.http.path,
        host=config.http.host,
        auth=auth,
        token_verifier=CredentialVerifier(config.credentials),
        json_response=True,
        transport_security=transport_security(config.http),
    )


def bind(config: GatewayConfig) -> socket.socket:
    """The listening socket (port 0 picks a free port; read it from the socket).

    With TCP_NODELAY, which accepted connections inherit: asyncio sets it only
    on sockets made with `IPPROTO_TCP`, and `create_server` makes them with
    protocol 0, so a response's headers and body, written apart, would wait
    out the client's delayed ACK (40 ms) on every reused connection.
    """
    sock = socket.create_server((config.http.host, config.http.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


async def serve_http(gateway: Gateway, config: GatewayConfig, sock: socket.socket) -> None:
    """Serve the app on an already bound socket until cancelled."""
    port = sock.getsockname()[1]
    app = http_app(gateway, config, port=port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    await server.serve(sockets=[sock])
