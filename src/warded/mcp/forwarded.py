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
answer for another's resource. Who claims a URI is looked up in a map of
what each upstream last listed (`_Offer`), rebuilt when it connects and on
each of its list changes: a read lists nothing upstream, and a hung
upstream holds no other's listing or read. A prompt, resource or template
is listed (and routes) only while vetted like a tool (`pins.py`).

A subscription to a resource's updates (handshake-era clients and
upstreams) is allowed when a read of it would be, audited as an event, and
forwarded upstream once per URI; each update is passed on to the
connections that subscribed, while a read of it is still allowed to them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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
from warded.mcp.pins import Vetting, name_of
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
Item = TypeVar("Item")
Audit = Callable[[str, Mapping[str, Any]], None]


async def listed(
    upstream: Upstream, method: str, listing: Awaitable[list[Item]], audit: Audit
) -> list[Item] | None:
    """An upstream's listing, or None when it fails (it timed out, say): logged and
    audited (`mcp.listing_failed`), and what it listed before stays as it was."""
    try:
        return await listing
    except Exception as exc:
        log.warning("upstream %s: %s failed: %s", upstream.id, method, type(exc).__name__)
        detail = {"upstream": upstream.id, "method": method, "error": type(exc).__name__}
        audit("mcp.listing_failed", detail)
        return None


def prompt_parameters(prompt: types.Prompt) -> dict[str, Any]:
    """The JSON Schema of a prompt's arguments (every MCP prompt argument is a string)."""
    arguments = prompt.arguments or []
    return {
        "type": "object",
        "properties": {a.name: {"type": "string"} for a in arguments},
        "required": [a.name for a in arguments if a.required],
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class Template:
    """A URI template (RFC 6570) as the literal parts around its expressions. A URI
    matches when it starts with the first part, ends with the last and holds the others
    in order, at least one character standing for each expression. Each part is placed
    leftmost in one pass — never backtracking, so no template an upstream lists can make
    matching slow (a regular expression of its expressions could take ages)."""

    parts: tuple[str, ...]

    @classmethod
    def of(cls, template: str) -> Template:
        return cls(tuple(re.split(r"\{[^}]*\}", template)))

    def match(self, uri: str) -> bool:
        if len(self.parts) == 1:
            return uri == self.parts[0]
        first, *inner, last = self.parts
        if not uri.startswith(first):
            return False
        at = len(first)  # where the text the next expression stands for begins
        for part in inner:
            found = uri.find(part, at + 1)
            if found < 0:
                return False
            at = found + len(part)
        return len(uri) - len(last) > at and uri.endswith(last)


@dataclass(frozen=True, slots=True)
class _Offer:
    """What one upstream offers to read, as it last listed it: its resources by URI and
    its templates, each with whether it was vetted (`pins.py`). One held back is not
    listed and routes no read, but still claims its URIs: it makes them ambiguous."""

    resources: Mapping[str, tuple[types.Resource, bool]]
    templates: Sequence[tuple[types.ResourceTemplate, Template, bool]]


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
        audit: Audit,
        vetting: Vetting,
    ) -> None:
        self.config = config
        self.gate = gate
        self._upstreams = upstreams
        self._session_of = session_of
        self._vetting = vetting
        self._prompts: dict[str, types.Prompt] = {}  # action -> the prompt as listed upstream
        self._offers: dict[str, _Offer] = {}  # upstream id -> what it offers to read
        # listed URI -> the one upstream listing it, None when several do (routed nowhere)
        self._owners: dict[str, str | None] = {}
        # resource URI -> connection -> (its principal, how to tell it the resource changed)
        self._subscribers: dict[str, dict[int, tuple[Principal, Updated]]] = {}
        self.audit = audit

    # -- keeping the gate's actions in line with the upstreams ----------------

    async def sync(self, upstream: Upstream) -> None:
        """List the upstream's resources and templates (the routing map) and prompts
        again, where the config forwards them, and register their actions."""
        if upstream.config.resources:
            await self._sync_resources(upstream)
        if upstream.config.prompts:
            await self._sync_prompts(upstream)

    async def _sync_resources(self, upstream: Upstream) -> None:
        uid = upstream.id
        if uid not in self._offers:
            self.gate.register(
                resource_action(uid),
                URI,
                self._reader(uid),
                description=f"Read a resource of {uid}.",
                labels=upstream.config.labels,
            )
            self._offers[uid] = _Offer({}, [])
        resources = await listed(upstream, "resources/list", upstream.resources(), self.audit)
        templates = await listed(
            upstream, "resources/templates/list", upstream.resource_templates(), self.audit
        )
        old = self._offers[uid]
        self._offers[uid] = _Offer(
            old.resources
            if resources is None
            else {str(r.uri): (r, self._vetted(uid, r)) for r in resources},
            old.templates
            if templates is None
            else [(t, Template.of(t.uri_template), self._vetted(uid, t)) for t in templates],
        )
        owners: dict[str, str | None] = {}
        for owner, offer in self._offers.items():
            for uri in offer.resources:
                owners[uri] = owner if uri not in owners else None
        self._owners = owners

    def _vetted(self, upstream: str, item: types.Resource | types.ResourceTemplate) -> bool:
        name = name_of(upstream, item)
        return name is not None and self._vetting.admit(upstream, name, item) is not None

    async def _sync_prompts(self, upstream: Upstream) -> None:
        prompts = await listed(upstream, "prompts/list", upstream.prompts(), self.audit)
        if prompts is None:
            return  # its prompts stay as they were
        found = {}
        for prompt in prompts:
            action = prompt_action(upstream.id, prompt.name)
            name = exposed_name(upstream.id, prompt.name)
            if action is None or name is None:
                log.warning("upstream %s: prompt %r cannot be exposed", upstream.id, prompt.name)
                continue
            if self._vetting.admit(upstream.id, name, prompt) is not None:
                found[action] = prompt
        for action in [a for a in self._prompts if a.startswith(f"{upstream.id}--")]:
            if self._prompts[action] != found.get(action):
                self.gate.unregister(action)
                del self._prompts[action]
        for action, prompt in found.items():
            if action in self._prompts:
                continue
            try:
                self.gate.register(
                    action,
                    prompt_parameters(prompt),
                    self._getter(upstream.id, prompt.name),
                    description=prompt.description or "",
                    labels=upstream.config.labels,
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
        return name in self._prompts or any(name == resource_action(u) for u in self._offers)

    def _visible(self, principal: Principal) -> set[str]:
        return {s.name for s in self.gate.tools(principal, self._session_of(principal))}

    # -- resources ---------------------------------------------------------------

    def resources(self, principal: Principal) -> list[types.Resource]:
        """The resources this principal could read now, as their upstreams last listed them."""
        session = self._session_of(principal)
        visible = self._visible(principal)
        shown: list[types.Resource] = []
        for owner, offer in self._offers.items():
            action = resource_action(owner)
            if action not in visible:
                continue
            for uri, (resource, _) in offer.resources.items():
                if self._route(uri) != owner:
                    continue  # held back, or claimed by another upstream too
                answer = self.gate.decide(principal, action, {"uri": uri}, session)
                if not isinstance(answer, Refusal) or answer.code == "approval_required":
                    shown.append(resource)
        return shown

    def templates(self, principal: Principal) -> list[types.ResourceTemplate]:
        """The vetted resource templates of every upstream whose resource action this
        principal sees."""
        visible = self._visible(principal)
        return [
            template
            for owner, offer in self._offers.items()
            if resource_action(owner) in visible
            for template, _, vetted in offer.templates
            if vetted
        ]

    def _route(self, uri: str) -> str | None:
        """The upstream a URI belongs to: the one upstream that lists it or has a template
        matching it, or the one upstream serving resources if none does; None when more
        than one claims it (URIs have no namespace: one upstream must not answer for
        another's resource), or when what claims it is held back."""
        matching = [
            (owner, vetted)
            for owner, offer in self._offers.items()
            for _, template, vetted in offer.templates
            if template.match(uri)
        ]
        claimants = {owner for owner, _ in matching}
        if uri in self._owners:
            claimants.add(self._owners[uri] or NOWHERE)  # NOWHERE: listed by several
        if len(claimants) > 1 or NOWHERE in claimants:
            log.warning("resource %r is claimed by several upstreams: not read", uri)
            return None
        if not claimants:
            return next(iter(self._offers)) if len(self._offers) == 1 else None
        (owner,) = claimants
        listed_here = self._offers[owner].resources.get(uri)
        vetted = listed_here[1] if listed_here else any(v for _, v in matching)
        return owner if vetted else None

    async def read(self, principal: Principal, uri: str, call_id: str) -> types.ReadResourceResult:
        """One `resources/read`, decided with its URI and run by the gate."""
        owner = self._route(uri)
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
        owner = self._route(uri)
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
        owner = self._route(uri)
        if owner is not None:
            await self._upstreams[owner].subscribe(uri, on=False)

    async def forget(self, connection: int) -> None:
        """A connection closed: drop its subscriptions."""
        for uri in [u for u, s in self._subscribers.items() if connection in s]:
            await self.unsubscribe(uri, connection)

    async def updated(self, upstream: Upstream, uri: str) -> None:
        """An upstream says a resource changed: tell who subscribed and may still read it,
        if the resource is that upstream's (no upstream speaks for another's)."""
        if self._route(uri) != upstream.id:
            log.warning("upstream %s: update of %r, not its resource, dropped", upstream.id, uri)
            return
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
