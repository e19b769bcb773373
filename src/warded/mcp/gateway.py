"""The gateway: upstream tools become gate tools; every listing and call goes through the gate.

Each upstream tool is registered on the gate as `<upstream>__<tool>` with the
upstream's input schema and an executor that forwards the frozen arguments
upstream, so the gate decides it like any other tool (policy, obligations,
audit before acting, session labels from the upstream's `labels`).
`tools/list` shows a principal exactly `gate.tools(principal, session)`, with
the upstream's own definitions; `tools/call` is `gate.acall`, and a refusal
becomes an `isError` result (see `results.py`).

A definition must match its pin to be exposed (`pins.py`); a changed or
unpinned definition is quarantined — unregistered from the gate, so it is
unknown to listings and calls alike — and the event is audited. Resources
and prompts, where the config forwards them, are gate actions of their own
(`forwarded.py`). With `shadow` in the config, a candidate bundle decides
every call beside the live one and is logged, never enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged

from warded.audit.record import AuditEntry, new_id
from warded.errors import BundleError, ToolDefinitionError, WardedError
from warded.gate import Gate
from warded.mcp.config import GatewayConfig, GatewayConfigError, exposed_name
from warded.mcp.forwarded import NOWHERE, Forwarded, GatewayError, listed
from warded.mcp.pins import Pins, Vetting
from warded.mcp.results import failed, refused, upstream_result
from warded.mcp.trusted import declarations
from warded.mcp.upstream import Upstream
from warded.model import Principal, Refusal, Session, ToolFailure
from warded.store import MemoryStore, Store
from warded.stores.sqlite import SQLiteStore

log = logging.getLogger("warded.mcp")

Notify = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Exposed:
    """An upstream tool as the gateway exposes it."""

    name: str
    upstream: str
    tool: types.Tool  # as the upstream lists it
    pin: str

    def listed(self) -> types.Tool:
        return self.tool.model_copy(update={"name": self.name})


class Gateway:
    """Upstream connections, the exposed tools, and the downstream connections to notify."""

    def __init__(self, config: GatewayConfig, gate: Gate, pins: Pins | None) -> None:
        self.config = config
        self.gate = gate
        self._upstreams: dict[str, Upstream] = {}
        self._exposed: dict[str, Exposed] = {}
        self.vetting = Vetting(pins, self._audit)
        self._changed: dict[str, bool] = {}  # upstream being listed again -> changed since
        self._downstream: dict[Principal, dict[int, Notify]] = {}
        self._shown: dict[Principal, frozenset[str]] = {}
        self._buses: dict[Principal, InMemorySubscriptionBus] = {}
        self._listeners: dict[Principal, ListenHandler] = {}
        self.forwarded = Forwarded(
            config, gate, self._upstreams, self.session, self._audit, self.vetting
        )

    # -- upstreams ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Connect every upstream and expose its tools; disconnect on exit."""
        async with contextlib.AsyncExitStack() as stack:
            for uid, upstream_config in self.config.upstreams.items():
                upstream = Upstream(upstream_config, self._upstream_changed, self.forwarded.updated)
                try:
                    self._upstreams[uid] = await stack.enter_async_context(upstream.connect())
                except Exception as exc:
                    raise WardedError(
                        f"upstream {uid}: cannot connect: {type(exc).__name__}: {exc}"
                    ) from None
            for upstream in self._upstreams.values():
                await self._sync(upstream)
            self._audit(
                "mcp.start",
                {
                    "upstreams": sorted(self._upstreams),
                    "protocols": {u: up.protocol_version for u, up in self._upstreams.items()},
                    "tools": {
                        n: {"upstream": e.upstream, "tool": e.tool.name, "pin": e.pin}
                        for n, e in sorted(self._exposed.items())
                    },
                    "quarantined": sorted(f"{k} {n}" for k, n in self.vetting.held),
                },
            )
            try:
                yield self
            finally:
                for handler in self._listeners.values():
                    handler.close()
                self._upstreams.clear()

    async def _upstream_changed(self, upstream: Upstream) -> None:
        """List a changed upstream again. A change while it is being listed asks for one
        more listing after that one: however many notifications an upstream sends, at
        most one listing of it runs, and one waits."""
        if upstream.id in self._changed:
            self._changed[upstream.id] = True
            return
        self._changed[upstream.id] = True
        try:
            while self._changed[upstream.id]:
                self._changed[upstream.id] = False
                await self._sync(upstream)
                await self.refresh()
        finally:
            del self._changed[upstream.id]

    async def _sync(self, upstream: Upstream) -> None:
        """List the upstream again and bring the gate's tools in line with the pins."""
        await self.forwarded.sync(upstream)
        tools = await listed(upstream, "tools/list", upstream.tools(), self._audit)
        if tools is None:
            return  # its tools stay as they were
        present: set[str] = set()
        for tool in tools:
            name = exposed_name(upstream.id, tool.name)
            if name is None:
                log.warning("upstream %s: tool name %r cannot be exposed", upstream.id, tool.name)
                continue
            present.add(name)
            pin = self.vetting.admit(upstream.id, name, tool)
            if pin is None:
                self._withdraw(name)
                continue
            current = self._exposed.get(name)
            if current is not None and current.pin == pin:
                continue
            self._expose(Exposed(name, upstream.id, tool, pin))
        for name in [n for n, e in self._exposed.items() if e.upstream == upstream.id]:
            if name not in present:
                self._withdraw(name)
                self._audit("mcp.tool_removed", {"upstream": upstream.id, "tool": name})

    def _expose(self, exposed: Exposed) -> None:
        self._withdraw(exposed.name)
        upstream = self.config.upstreams[exposed.upstream]
        try:
            self.gate.register(
                exposed.name,
                exposed.tool.input_schema,
                self._executor(exposed.upstream, exposed.tool.name),
                description=exposed.tool.description or "",
                labels=upstream.labels,
            )
        except Exception as exc:  # an upstream's definition never stops the gateway
            reason = str(exc) if isinstance(exc, ToolDefinitionError) else type(exc).__name__
            self.vetting.hold(exposed.upstream, exposed.name, exposed.tool, reason, exposed.pin)
            return
        self._exposed[exposed.name] = exposed

    def _withdraw(self, name: str) -> None:
        if name in self._exposed:
            self.gate.unregister(name)
            del self._exposed[name]

    def _executor(self, upstream_id: str, tool: str) -> Callable[..., Awaitable[Any]]:
        async def forward(**arguments: Any) -> dict[str, Any]:
            return upstream_result(await self._upstreams[upstream_id].call(tool, arguments))

        return forward

    def _audit(self, event: str, detail: Mapping[str, Any]) -> None:
        entry = AuditEntry(
            kind="event",
            call=new_id(),
            time=self.gate.clock.now(),
            detail={"event": event, **detail},
        )
        try:
            self.gate.store.append([entry])
        except Exception as exc:
            log.error("could not audit %s: %s", event, exc)

    # -- what a principal sees and calls -------------------------------------

    def session(self, principal: Principal) -> Session:
        """The warded session of an MCP principal (stable across connections, see docs)."""
        return Session(self.config.session_of(principal))

    async def trust(self, principal: Principal, carrier: Any) -> None:
        """Remember the trusted text a request's `_meta` carries (`trusted.py`) in the
        principal's session, through `Gate.trust` (which audits each text); a carrier the
        principal may not send is a GatewayError, audited as `mcp.trust_refused`."""
        session = self.session(principal)
        try:
            declared = declarations(
                carrier,
                self.config.trusted_sources(principal),
                f"principals.{principal.id}",
                self.gate.remember // 4,  # as `POST /v1/trust`: no one text pushes most out
            )
        except GatewayError as exc:
            log.warning("refused trusted text from %s: %s", principal, exc.message)
            detail = {"principal": str(principal), "session": session.id, "reason": exc.message}
            self._audit("mcp.trust_refused", detail)
            raise
        for source, text in declared:
            await asyncio.to_thread(
                self.gate.trust, session, text, source=source, declared_by=principal
            )

    def tools(self, principal: Principal) -> list[types.Tool]:
        """The tools this principal may use in its session now, as the upstreams define them."""
        specs = self.gate.tools(principal, self.session(principal))
        shown = [self._exposed[s.name] for s in specs if s.name in self._exposed]
        self._shown[principal] = frozenset(e.name for e in shown)
        return [e.listed() for e in shown]

    async def call(
        self, principal: Principal, name: str, arguments: Mapping[str, Any] | None, call_id: str
    ) -> types.CallToolResult:
        """One `tools/call`, decided and run by the gate."""
        if self.forwarded.owns(name):  # a resource or prompt action is not a tool
            name = NOWHERE
        result = await self.gate.acall(
            principal, name, arguments or {}, self.session(principal), call_id=call_id
        )
        if isinstance(result, Refusal):
            answer = refused(result)
        elif isinstance(result, ToolFailure):
            answer = failed(result)
        else:
            answer = types.CallToolResult.model_validate(result)
        await self.after_call(principal)
        return answer

    async def after_call(self, principal: Principal) -> None:
        """`refresh` for the principal whose call was answered: a failure (the store's, say)
        is logged, never put in place of the answer of a call that may have run."""
        try:
            await self.refresh(principal)
        except Exception:
            log.exception("could not tell %s whether its tools changed", principal)

    # -- telling downstream clients that their listing changed ---------------

    def attach(self, principal: Principal, key: int, notify: Notify) -> Callable[[], None]:
        """Register a connection to notify; returns the function that detaches it."""
        self._downstream.setdefault(principal, {})[key] = notify

        def detach() -> None:
            self._downstream.get(principal, {}).pop(key, None)

        return detach

    def listener(self, principal: Principal) -> ListenHandler:
        """The `subscriptions/listen` handler (2026-07-28) for one principal's events."""
        handler = self._listeners.get(principal)
        if handler is None:
            bus = self._buses[principal] = InMemorySubscriptionBus()
            handler = self._listeners[principal] = ListenHandler(bus)
        return handler

    async def refresh(self, only: Principal | None = None) -> None:
        """Notify every principal whose visible tools changed (a reload, a quarantine, a label)."""
        principals = set(self._downstream) | set(self._buses)
        for principal in [only] if only is not None else principals:
            if principal not in principals:
                continue
            before = self._shown.get(principal)
            now = frozenset(
                s.name
                for s in self.gate.tools(principal, self.session(principal))
                if s.name in self._exposed
            )
            if before == now:
                continue
            self._shown[principal] = now
            for notify in list(self._downstream.get(principal, {}).values()):
                await notify()
            bus = self._buses.get(principal)
            if bus is not None:
                await bus.publish(ToolsListChanged())

    async def reload(self) -> str:
        """Reload the policy bundle (BundleError keeps the old one), and the shadow bundle if
        the config names one, and notify who is affected."""
        version = self.gate.reload()
        if self.config.shadow is not None:
            try:
                self.gate.shadow(self.config.shadow)
            except BundleError as exc:
                log.error("shadow bundle rejected, the previous one stays: %s", exc)
        await self.refresh()
        return version

    async def resync(self) -> None:
        """Read the pins file again (after re-pinning, say; one that cannot be read is a
        GatewayConfigError and the pins stay), list every upstream again and notify who
        is affected."""
        if self.config.pins is not None:
            self.vetting.pins = read_pins(self.config)
        for upstream in self._upstreams.values():
            await self._sync(upstream)
        await self.refresh()


def open_gateway(config: GatewayConfig) -> Gateway:
    """A gateway for `config`: its policy directory, its store, its pins."""
    store: Store = MemoryStore() if config.store == ":memory:" else SQLiteStore(config.store)
    gate = Gate.from_directory(config.policies, store=store)
    if config.shadow is not None:
        gate.shadow(config.shadow)  # decided and logged beside the live bundle, never enforced
    return Gateway(config, gate, None if config.pins is None else read_pins(config))


def read_pins(config: GatewayConfig) -> Pins:
    """The pins file the config names; GatewayConfigError if it is missing or broken."""
    assert config.pins is not None
    pins = Pins.read(config.pins)
    if pins is None:
        raise GatewayConfigError(
            f"{config.pins}: no pins file yet; run `warded mcp pin {config.path}` first"
        )
    return pins
