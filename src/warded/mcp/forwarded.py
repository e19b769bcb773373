"""Resources and prompts: forwarded only when the config names them, through the gate.

An upstream with `resources = true` gets one action, `<upstream>--resource`,
whose one argument is the URI: `resources/list` shows a principal the
resources a read of which the policy could allow now (each URI decided as a
dry run), `resources/templates/list` shows the templates when the action is
visible at all, and `resources/read` is a gate call of that action (decided
with the URI, audited, run once). An upstream with `prompts = true` gets one
action per prompt, `<upstream>--prompt--<name>`, whose arguments are the
prompt's (strings); the prompt is shown downstream as `<upstream>__<name>`
(the tools' scheme, in the prompts' own namespace), listed only when its
action is visible, and `prompts/get` is a gate call. Both take the
upstream's `labels`, like its tools.

A refused read or get — and a URI or prompt name that no upstream owns —
is a JSON-RPC error whose message is the neutral refusal and whose `data`
holds its fields; a hidden prompt and one that never existed get the same
answer, and so does a URI that two upstreams claim (by listing it or by a
template that matches it): URIs have no namespace, and no upstream may
answer for another's resource. A subscription to a resource's updates
(handshake-era clients and upstreams) is allowed when a read of it would
be, audited as an event, and forwarded upstream once per URI; each update
is passed on to the connections that subscribed, while a read of it is
still allowed to them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from warded.errors import ToolDefinitionError
from warded.gate import Gate
from warded.mcp.config import (
    GatewayConfig,
    exposed_name,
    prompt_action,
    resource_action,
    split_name,
)
from warded.mcp.results import FAILURE_META, REFUSAL_META, upstream_result
from warded.mcp.upstream import Upstream
from warded.model import Principal, Refusal, Session, ToolFailure

log = logging.getLogger("warded.mcp")

URI = {
    "type": "object",
    "properties": {"uri": {"type": "string"}},
    "required": ["uri"],
    "additionalProperties": False,
}
Updated = Callable[[str], Awaitable[None]]
NOWHERE = "--unknown--"  # never a registered name: the gate's uniform unknown_tool answer


def prompt_parameters(prompt: types.Prompt) -> dict[str, Any]:
    """The JSON Schema of a prompt's arguments (every MCP prompt argument is a string)."""
    arguments = prompt.arguments or []
    return {
        "type": "object",
        "properties": {a.name: {"type": "string"} for a in arguments},
        "required": [a.name for a in arguments if a.required],
        "additionalProperties": False,
    }


def template_pattern(template: str) -> re.Pattern[str]:
    """A URI template (RFC 6570) as a pattern over the URIs it can expand to."""
    parts = re.split(r"(\{[^}]*\})", template)
    return re.compile("".join(".+" if p.startswith("{") else re.escape(p) for p in parts) + r"\Z")


@dataclass(frozen=True, slots=True)
class _Claims:
    """The resources the upstreams list (URI → the first to list it, and every upstream
    that does) and their templates (upstream id, pattern)."""

    listed: dict[str, tuple[Upstream, types.Resource]]
    listers: dict[str, list[str]]
    templates: list[tuple[str, re.Pattern[str]]]

    def of(self, uri: str) -> list[str]:
        """The upstreams that list `uri` or have a template matching it, each once."""
        matching = [u for u, pattern in self.templates if pattern.match(uri)]
        return list(dict.fromkeys(self.listers.get(uri, []) + matching))


class GatewayError(MCPError):
    """An error the gateway itself answers with; any other error is answered "Internal error"
    (an upstream's error text, say, never reaches the client)."""


def refusal_error(refusal: Refusal | ToolFailure) -> GatewayError:
    """A refused or failed read/get as a JSON-RPC error (no result type carries `isError`)."""
    key = REFUSAL_META if isinstance(refusal, Refusal) else FAILURE_META
    return GatewayError(types.INVALID_PARAMS, refusal.to_model(), data={key: refusal.to_dict()})


class Forwarded:
    """The resources and prompts of the upstreams whose config forwards them."""

    def __init__(
        self,
        config: GatewayConfig,
        gate: Gate,
        upstreams: Mapping[str, Upstream],
        session_of: Callable[[Principal], Session],
        audit: Callable[[str, Mapping[str, Any]], None],
    ) -> None:
        self.config = config
        self.gate = gate
        self._upstreams = upstreams
        self._session_of = session_of
        self._prompts: dict[str, types.Prompt] = {}  # action -> the prompt as listed upstream
        self._reading: set[str] = set()  # upstreams whose resource action is registered
        # resource URI -> connection -> (its principal, how to tell it the resource changed)
        self._subscribers: dict[str, dict[int, tuple[Principal, Updated]]] = {}
        self.audit = audit

    # -- keeping the gate's actions in line with the upstreams ----------------

    async def sync(self, upstream: Upstream) -> None:
        """Register the upstream's resource action and the actions of the prompts it lists."""
        config = upstream.config
        if config.resources and upstream.id not in self._reading:
            self._reading.add(upstream.id)
            self.gate.register(
                resource_action(upstream.id),
                URI,
                self._reader(upstream.id),
                description=f"Read a resource of {upstream.id}.",
                labels=config.labels,
            )
        if not config.prompts:
            return
        listed = {}
        for prompt in await upstream.prompts():
            action = prompt_action(upstream.id, prompt.name)
            if action is None or exposed_name(upstream.id, prompt.name) is None:
                log.warning("upstream %s: prompt %r cannot be exposed", upstream.id, prompt.name)
                continue
            listed[action] = prompt
        for action in [a for a in self._prompts if a.startswith(f"{upstream.id}--")]:
            if self._prompts[action] != listed.get(action):
                self.gate.unregister(action)
                del self._prompts[action]
        for action, prompt in listed.items():
            if action in self._prompts:
                continue
            try:
                self.gate.register(
                    action,
                    prompt_parameters(prompt),
                    self._getter(upstream.id, prompt.name),
                    description=prompt.description or "",
                    labels=config.labels,
                )
            except ToolDefinitionError as exc:
                log.warning("upstream %s: prompt %r not exposed: %s", upstream.id, prompt.name, exc)
                continue
            self._prompts[action] = prompt

    def _reader(self, upstream_id: str) -> Callable[..., Awaitable[Any]]:
        async def read(uri: str) -> dict[str, Any]:
            return upstream_result(await self._upstreams[upstream_id].read(uri))

        return read

    def _getter(self, upstream_id: str, prompt: str) -> Callable[..., Awaitable[Any]]:
        async def get(**arguments: str) -> dict[str, Any]:
            return upstream_result(await self._upstreams[upstream_id].prompt(prompt, arguments))

        return get

    def owns(self, name: str) -> bool:
        """Whether `name` is one of the resource or prompt actions (never a tool to call)."""
        return name in self._prompts or any(name == resource_action(u) for u in self._reading)

    def _visible(self, principal: Principal) -> set[str]:
        return {s.name for s in self.gate.tools(principal, self._session_of(principal))}

    # -- resources ---------------------------------------------------------------

    def _serving_resources(self) -> list[Upstream]:
        return [u for u in self._upstreams.values() if u.config.resources]

    async def resources(self, principal: Principal) -> list[types.Resource]:
        """The resources this principal could read now, as their upstreams list them."""
        session = self._session_of(principal)
        visible = self._visible(principal)
        claims = await self._claims()
        shown: list[types.Resource] = []
        for uri, (upstream, resource) in claims.listed.items():
            if claims.of(uri) != [upstream.id]:
                continue  # another upstream claims it too: no read of it goes anywhere
            action = resource_action(upstream.id)
            if action not in visible:
                continue
            answer = self.gate.decide(principal, action, {"uri": uri}, session)
            if not isinstance(answer, Refusal) or answer.code == "approval_required":
                shown.append(resource)
        return shown

    async def _claims(self) -> _Claims:
        """What every upstream serving resources lists now, and its templates."""
        claims = _Claims({}, {}, [])
        for upstream in self._serving_resources():
            for resource in await upstream.resources():
                uri = str(resource.uri)
                claims.listed.setdefault(uri, (upstream, resource))
                claims.listers.setdefault(uri, []).append(upstream.id)
            for template in await upstream.resource_templates():
                claims.templates.append((upstream.id, template_pattern(template.uri_template)))
        return claims

    async def templates(self, principal: Principal) -> list[types.ResourceTemplate]:
        """The resource templates of every upstream whose resource action this principal sees."""
        visible = self._visible(principal)
        shown: list[types.ResourceTemplate] = []
        for upstream in self._serving_resources():
            if resource_action(upstream.id) in visible:
                shown.extend(await upstream.resource_templates())
        return shown

    async def _route(self, uri: str) -> str | None:
        """The upstream a URI belongs to: the one upstream that lists it or has a template
        matching it; None when none does, or more than one (URIs have no namespace: one
        upstream must not answer for another's resource)."""
        serving = self._serving_resources()
        if len(serving) == 1:
            return serving[0].id
        claimants = (await self._claims()).of(uri)
        if len(claimants) > 1:
            log.warning("resource %r is claimed by upstreams %s: not read", uri, claimants)
        return claimants[0] if len(claimants) == 1 else None

    async def read(self, principal: Principal, uri: str, call_id: str) -> types.ReadResourceResult:
        """One `resources/read`, decided with its URI and run by the gate."""
        owner = await self._route(uri)
        action = NOWHERE if owner is None else resource_action(owner)
        result = await self.gate.acall(
            principal, action, {"uri": uri}, self._session_of(principal), call_id=call_id
        )
        if isinstance(result, Refusal | ToolFailure):
            raise refusal_error(result)
        return types.ReadResourceResult.model_validate(result)

    async def subscribe(
        self, principal: Principal, uri: str, connection: int, updated: Updated
    ) -> None:
        """Pass a resource's updates to this connection, if a read of it would be allowed."""
        owner = await self._route(uri)
        action = NOWHERE if owner is None else resource_action(owner)
        answer = self.gate.decide(principal, action, {"uri": uri}, self._session_of(principal))
        if isinstance(answer, Refusal):
            raise refusal_error(answer)
        assert owner is not None
        subscribers = self._subscribers.setdefault(uri, {})
        if not subscribers:
            await self._upstreams[owner].subscribe(uri, on=True)
        subscribers[connection] = (principal, updated)
        self.audit(
            "mcp.resource_subscribe",
            {"principal": str(principal), "upstream": owner, "uri": uri},
        )

    async def unsubscribe(self, uri: str, connection: int) -> None:
        """Stop passing a resource's updates to this connection."""
        subscribers = self._subscribers.get(uri, {})
        if subscribers.pop(connection, None) is None or subscribers:
            return
        del self._subscribers[uri]
        owner = await self._route(uri)
        if owner is not None:
            await self._upstreams[owner].subscribe(uri, on=False)

    async def forget(self, connection: int) -> None:
        """A connection closed: drop its subscriptions."""
        for uri in [u for u, s in self._subscribers.items() if connection in s]:
            await self.unsubscribe(uri, connection)

    async def updated(self, upstream: Upstream, uri: str) -> None:
        """An upstream says a resource changed: tell who subscribed and may still read it."""
        action = resource_action(upstream.id)
        for principal, tell in list(self._subscribers.get(uri, {}).values()):
            answer = self.gate.decide(principal, action, {"uri": uri}, self._session_of(principal))
            if not isinstance(answer, Refusal):
                try:
                    await tell(uri)
                except Exception as exc:  # a connection without a channel for notifications
                    log.warning("resource update not delivered: %s", type(exc).__name__)

    # -- prompts -----------------------------------------------------------------

    def prompts(self, principal: Principal) -> list[types.Prompt]:
        """The prompts this principal may get now, named `<upstream>__<prompt>`."""
        visible = self._visible(principal)
        shown = []
        for action, prompt in sorted(self._prompts.items()):
            if action in visible:
                upstream = action.split("--", 1)[0]
                shown.append(prompt.model_copy(update={"name": f"{upstream}__{prompt.name}"}))
        return shown

    async def prompt(
        self, principal: Principal, name: str, arguments: Mapping[str, str] | None, call_id: str
    ) -> types.GetPromptResult:
        """One `prompts/get`, decided with its arguments and run by the gate."""
        split = split_name(name)
        action = (prompt_action(*split) if split else None) or NOWHERE
        if action not in self._prompts:
            action = NOWHERE
        result = await self.gate.acall(
            principal, action, dict(arguments or {}), self._session_of(principal), call_id=call_id
        )
        if isinstance(result, Refusal | ToolFailure):
            raise refusal_error(result)
        return types.GetPromptResult.model_validate(result)
