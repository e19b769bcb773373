"""The OpenID AuthZEN Authorization API 1.0, for enforcement points (PEPs).

How a request maps onto warded (docs/api.md has the full table):

    subject (type, id)    the principal `type::"id"`
    action.name           a declared tool (one the caller runs; see the `declared` setting)
    the whole request     the tool's arguments: `{subject, resource, action, context}`
                          with their `properties`, cut down to what the tool's
                          JSON Schema declares (AuthZEN asks that unknown fields
                          be ignored; a policy cannot read undeclared ones anyway)
    resource (type, id)   the resource, as the tool's resource rule derives it
                          from those arguments (`type_from: resource.type`, …)
    context.session       the session id (default: one session per PEP account)

An evaluation is warded's decision with its obligations: it goes through
`gate.call` of the declared tool, so it is audited before the permit is
given, limits are reserved, and a call that needs approval is `decision:
false` with the approval id in the context; the identical evaluation after
approval is `true`, once. The search APIs are dry runs (`gate.decide`):
nothing is recorded and no approval is requested.

Only accounts of kind `pep` reach these endpoints: what a PEP sends about a
subject is request data it vouches for, which is why no agent may send it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from warded.model import Principal, Refusal, Session
from warded.server.accounts import Account
from warded.server.config import DECLARED_RESULT
from warded.server.problems import ApiError
from warded.server.service import Service, authenticate, service_of

router = APIRouter(tags=["AuthZEN"])
EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
SEARCH = "/access/v1/search/"
SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
Entity = dict[str, Any]


class Invalid(ValueError):
    """One evaluation is malformed (a 400 alone, a `decision: false` inside a batch)."""


@router.get("/.well-known/authzen-configuration", summary="AuthZEN PDP metadata")
async def metadata(request: Request) -> JSONResponse:
    base = _base(request)
    return JSONResponse(
        {
            "policy_decision_point": base,
            "access_evaluation_endpoint": base + EVALUATION,
            "access_evaluations_endpoint": base + EVALUATIONS,
            "search_subject_endpoint": base + SEARCH + "subject",
            "search_resource_endpoint": base + SEARCH + "resource",
            "search_action_endpoint": base + SEARCH + "action",
        }
    )


def _base(request: Request) -> str:
    configured = service_of(request).config.public_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")


@router.post(EVALUATION, summary="AuthZEN access evaluation")
async def evaluation(request: Request) -> JSONResponse:
    service, pep, body = await _open(request)
    try:
        one = _request(body, body)
    except Invalid as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return JSONResponse(await run_in_threadpool(evaluate, service, pep, *one))


@router.post(EVALUATIONS, summary="AuthZEN access evaluations (batch)")
async def evaluations(request: Request) -> JSONResponse:
    service, pep, body = await _open(request)
    items = body.get("evaluations")
    if items is None or items == []:
        try:
            one = _request(body, body)
        except Invalid as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        return JSONResponse(await run_in_threadpool(evaluate, service, pep, *one))
    if not isinstance(items, list):
        raise ApiError(400, "invalid_request", "evaluations must be an array")
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise ApiError(400, "invalid_request", "options must be an object")
    semantic = options.get("evaluations_semantic", "execute_all")
    if semantic not in SEMANTICS:
        raise ApiError(400, "invalid_request", f"evaluations_semantic must be one of {SEMANTICS}")
    return JSONResponse(
        {"evaluations": await run_in_threadpool(_batch, service, pep, body, items, semantic)}
    )


def _batch(
    service: Service, pep: Account, body: dict[str, Any], items: list[Any], semantic: str
) -> list[dict[str, Any]]:
    out = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise Invalid("each evaluation must be an object")
            answer = evaluate(service, pep, *_request(item, body))
        except Invalid as exc:
            answer = {"decision": False, "context": {"error": {"status": 400, "message": str(exc)}}}
        out.append(answer)
        if (semantic == "deny_on_first_deny" and not answer["decision"]) or (
            semantic == "permit_on_first_permit" and answer["decision"]
        ):
            break
    return out


def evaluate(
    service: Service,
    pep: Account,
    subject: Entity,
    action: Entity,
    resource: Entity,
    context: Entity,
) -> dict[str, Any]:
    """One AuthZEN evaluation, decided, audited and with its obligations applied."""
    declared = _declared(service, action["name"])
    if declared is None:
        return _denied(Refusal("unknown_tool", ref=""))
    args = _prune(arguments(subject, action, resource, context), declared)
    principal = Principal(subject["type"], subject["id"])
    outcome = service.gate.call(principal, action["name"], args, _session(pep, context))
    if isinstance(outcome, Refusal):
        if outcome.code == "approval_required":
            service.live.poke()
        return _denied(outcome)
    return {"decision": outcome == DECLARED_RESULT}


def arguments(subject: Entity, action: Entity, resource: Entity, context: Entity) -> Entity:
    """The request itself, as the declared tool's arguments."""
    return {
        "subject": {
            "type": subject["type"],
            "id": subject.get("id"),
            "properties": subject.get("properties", {}),
        },
        "resource": {
            "type": resource["type"],
            "id": resource.get("id"),
            "properties": resource.get("properties", {}),
        },
        "action": {"name": action.get("name"), "properties": action.get("properties", {})},
        "context": {k: v for k, v in context.items() if k != "session"},
    }


def _declared(service: Service, name: str) -> Mapping[str, Any] | None:
    if name not in service.declared:
        return None
    return next(d.parameters for d in service.config.declared if d.name == name)


def _prune(value: Any, schema: Any) -> Any:
    """Keep only what `schema` declares where it lists an object's properties."""
    if isinstance(value, dict) and isinstance(schema, Mapping):
        props = schema.get("properties")
        if isinstance(props, Mapping):
            return {k: _prune(v, props[k]) for k, v in value.items() if k in props}
    return value


def _session(pep: Account, context: Entity) -> Session:
    session = context.get("session")
    if isinstance(session, str) and 0 < len(session) <= 256:
        return Session(session)
    return Session(f"authzen:{pep.id}")


def _denied(refusal: Refusal) -> dict[str, Any]:
    return {"decision": False, "context": {"refusal": refusal.to_dict()}}


# -- search -------------------------------------------------------------------

Target = Literal["subject", "resource", "action"]


def _search_route(target: Target) -> None:
    async def route(request: Request) -> JSONResponse:
        service, _, body = await _open(request)
        try:
            subject = _entity(body, "subject", need_id=target != "subject")
            resource = _entity(body, "resource", need_id=target != "resource")
            action = _action(body) if target != "action" else {"name": None}
            context = _context(body.get("context"))
        except Invalid as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        found = await run_in_threadpool(
            _search, service, target, subject, action, resource, context
        )
        return JSONResponse({"results": found})

    router.add_api_route(
        SEARCH + target, route, methods=["POST"], summary=f"AuthZEN {target} search"
    )


for _target in ("subject", "resource", "action"):
    _search_route(_target)


def _search(
    service: Service,
    target: Target,
    subject: Entity,
    action: Entity,
    resource: Entity,
    context: Entity,
) -> list[dict[str, Any]]:
    """What a dry run allows, over the bundle's entities of the searched type (or the tools)."""
    bundle = service.gate.bundle
    if target == "action":
        names = sorted(service.declared)
        return [
            {"name": n}
            for n in names
            if _allowed(service, subject, {"name": n, "properties": {}}, resource, context)
        ]
    kind = subject["type"] if target == "subject" else resource["type"]
    ids = sorted(i for t, i in bundle.ancestors if t == kind)
    results = []
    for entity_id in ids:
        s = {**subject, "id": entity_id} if target == "subject" else subject
        r = {**resource, "id": entity_id} if target == "resource" else resource
        if _allowed(service, s, action, r, context):
            results.append({"type": kind, "id": entity_id})
    return results


def _allowed(
    service: Service, subject: Entity, action: Entity, resource: Entity, context: Entity
) -> bool:
    declared = _declared(service, action["name"])
    if declared is None:
        return False
    args = _prune(arguments(subject, action, resource, context), declared)
    principal = Principal(subject["type"], subject["id"])
    session = Session(context["session"] if isinstance(context.get("session"), str) else "search")
    return not isinstance(service.gate.decide(principal, action["name"], args, session), Refusal)


# -- parsing ------------------------------------------------------------------


async def _open(request: Request) -> tuple[Service, Account, dict[str, Any]]:
    """The PEP, and the request's JSON object (400 for anything else)."""
    service = service_of(request)
    pep = authenticate(request, ("pep",))
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(400, "unsupported_media_type", "the body must be application/json")
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "invalid_request", "the body is empty")
    try:
        body = json.loads(raw, parse_constant=_not_json)
        json.dumps(body, ensure_ascii=False).encode()  # a lone surrogate is no character
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_request", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return service, pep, body


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # NaN and Infinity: Python's parser takes them


def _request(item: dict[str, Any], defaults: dict[str, Any]) -> tuple[Entity, ...]:
    """(subject, action, resource, context) of one evaluation; the top level gives defaults."""
    merged = {k: item[k] if k in item else defaults.get(k) for k in _PARTS}
    return (
        _entity(merged, "subject", need_id=True),
        _action(merged),
        _entity(merged, "resource", need_id=True),
        _context(merged.get("context")),
    )


_PARTS = ("subject", "action", "resource", "context")


def _entity(body: Mapping[str, Any], key: str, *, need_id: bool) -> Entity:
    value = body.get(key)
    if value is None:
        raise Invalid(f"{key} is required")
    if not isinstance(value, dict):
        raise Invalid(f"{key} must be an object")
    if not isinstance(value.get("type"), str) or not value["type"]:
        raise Invalid(f"{key}.type is required and must be a string")
    if need_id and (not isinstance(value.get("id"), str) or not value["id"]):
        raise Invalid(f"{key}.id is required and must be a string")
    properties = value.get("properties", {})
    if not isinstance(properties, dict):
        raise Invalid(f"{key}.properties must be an object")
    entity: Entity = {"type": value["type"], "properties": properties}
    if need_id:
        entity["id"] = value["id"]
    return entity


def _action(body: Mapping[str, Any]) -> Entity:
    value = body.get("action")
    if value is None:
        raise Invalid("action is required")
    if not isinstance(value, dict):
        raise Invalid("action must be an object")
    if not isinstance(value.get("name"), str) or not value["name"]:
        raise Invalid("action.name is required and must be a string")
    properties = value.get("properties", {})
    if not isinstance(properties, dict):
        raise Invalid("action.properties must be an object")
    return {"name": value["name"], "properties": properties}


def _context(value: Any) -> Entity:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("context must be an object")
    return value
