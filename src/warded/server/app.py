"""The ASGI application: routes, error bodies, body limits, security headers, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from warded.clock import Clock, SystemClock
from warded.gate import Gate
from warded.server import api, authzen, pages
from warded.server.accounts import AccountBook, Throttle
from warded.server.config import ConfigError, ServiceConfig, build_gate, open_store
from warded.server.ledger import Ledger
from warded.server.live import Live
from warded.server.notify import Notifier
from warded.server.problems import ApiError, error_response
from warded.server.service import Service, service_of
from warded.store import Store
from warded.telemetry import Telemetry

if TYPE_CHECKING:
    from warded.mcp import Gateway

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make forms send Origin: null
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
STORE_CHECK_SECONDS = 5.0


def create_app(config: ServiceConfig, *, clock: Clock | None = None) -> FastAPI:
    """The service for one configuration: its store, gate, accounts and pages."""
    clock = clock if clock is not None else SystemClock()
    gateway = upstreams(config)  # a broken gateway config fails before anything is opened
    telemetry = Telemetry()  # spans and metrics to the global providers (the otel extra)
    opened = open_store(config.store)
    store = telemetry.observe(opened)
    gate = build_gate(config, store, clock)
    shadow_version = gate.shadow(config.shadow) if config.shadow is not None else None
    mcp = gateway(gate) if gateway is not None else None
    telemetry.watch(gate.approvals, clock)
    ledger = Ledger(store)
    notifier = None
    if config.webhook is not None:
        key = config.webhook.secret_file.read_bytes().strip()
        notifier = Notifier(config.webhook.url, key, clock)
    service = Service(
        config=config,
        gate=gate,
        accounts=AccountBook(config.accounts, clock),
        throttle=Throttle(clock, config.login),
        clock=clock,
        ledger=ledger,
        live=Live(gate.approvals, store, config.live_poll_seconds, notifier),
        declared=frozenset(d.name for d in config.declared),
        shadow_version=shadow_version,
    )
    service.live.describe = lambda approval_id: service.approval_view(
        gate.approvals.get(approval_id)
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feed = asyncio.create_task(service.live.run())
        try:
            async with contextlib.AsyncExitStack() as stack:
                if getattr(opened, "shared", False):
                    stack.callback(_follow(gate, opened).close)
                if mcp is not None:
                    await stack.enter_async_context(mcp.running())
                yield
        finally:
            # stopped, not cancelled: a cancelled feed would leave its store read running
            # in a worker thread while the store closes under it
            await service.live.stop(feed)
            store.close()

    app = FastAPI(
        title="warded",
        summary="Execution authority for AI agents: decide, execute, approve, audit.",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.include_router(api.router)
    app.include_router(authzen.router)
    app.include_router(pages.router)
    app.add_api_route("/healthz", health, methods=["GET"], summary="Live bundle and store state")
    app.add_api_route("/readyz", ready, methods=["GET"], summary="503 while the store is down")
    static = resources.files("warded.server") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(pages.SignIn, pages.to_sign_in)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(Guard, max_body=config.max_body_bytes)
    if config.trusted_proxies:  # their X-Forwarded-For and -Proto, and no one else's
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(config.trusted_proxies))
    return app


def _follow(gate: Gate, store: Store) -> Any:
    """Keep the gate on the database's live bundle (pushes from any node)."""
    from warded.stores.live import Follower

    return Follower(gate, store).start()  # type: ignore[arg-type]


def upstreams(config: ServiceConfig) -> Callable[[Gate], Gateway] | None:
    """What makes the MCP gateway over the service's gate, for the upstreams of
    `config.mcp` (the `mcp` extra); its tools are registered while the app runs."""
    if config.mcp is None:
        return None
    try:
        from warded.mcp import Gateway, GatewayConfigError, load
        from warded.mcp.pins import Pins
    except ImportError as exc:
        raise ConfigError(f"{config.source}: mcp: {exc}") from None
    try:
        mcp = load(config.mcp)
    except (GatewayConfigError, OSError) as exc:
        raise ConfigError(f"{config.source}: mcp: {exc}") from None
    pins = None
    if mcp.pins is not None:
        pins = Pins.read(mcp.pins)
        if pins is None:
            raise ConfigError(f"{mcp.pins}: no pins file yet; run `warded mcp pin {mcp.path}`")
    return lambda gate: Gateway(mcp, gate, pins)


async def health(request: Request) -> JSONResponse:
    service = service_of(request)
    store = await _store_state(service)
    return JSONResponse(
        {
            "status": "ok" if store["ok"] else "degraded",
            "bundle_version": service.gate.version,
            "shadow_bundle_version": service.shadow_version,
            "store": store,
        }
    )


async def ready(request: Request) -> JSONResponse:
    store = await _store_state(service_of(request))
    if not store["ok"]:
        return error_response(503, "unavailable", "the store cannot be reached")
    return JSONResponse({"ready": True})


async def _store_state(service: Service) -> dict[str, Any]:
    try:
        checkpoint = await asyncio.wait_for(
            asyncio.to_thread(service.gate.store.checkpoint), STORE_CHECK_SECONDS
        )
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "records": checkpoint.size}


async def _api_error(request: Request, exc: ApiError) -> Response:
    return exc.response()


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    problems = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {e.get('msg', 'invalid')}")
    return error_response(400, "invalid_request", "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404:
        return error_response(404, "not_found", "no such endpoint")
    if exc.status_code == 405:
        return error_response(405, "invalid_request", "method not allowed")
    return error_response(exc.status_code, "invalid_request", str(exc.detail))


class Guard:
    """Bounded request bodies (413), security headers and `X-Request-ID` on every answer."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id") or secrets.token_hex(8).encode()

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *SECURITY_HEADERS,
                    (b"x-request-id", request_id[:200]),
                ]
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _too_large(scope, receive, send_guarded)
            return
        if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            body = await _read_bounded(receive, self.max_body)
            if body is None:
                await _too_large(scope, receive, send_guarded)
                return
            receive = _replay(body)
        await self.app(scope, receive, send_guarded)


async def _read_bounded(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    answer = error_response(413, "payload_too_large", "the request body is too large")
    await answer(scope, receive, send)
