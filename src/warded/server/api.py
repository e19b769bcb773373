"""The JSON API: agents list, decide and execute their calls; people decide approvals.

An agent is the principal its credential says, always: no request field can
name another principal, and an agent reads only its own records and
approvals. Refusals are answers (HTTP 200), exactly the gate's `Refusal`.
An agent whose account the config's `trust` names declares trusted text
(the user's own words) for argument provenance, under the names listed there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from warded.audit.record import AuditRecord
from warded.errors import ApprovalError, BundleError
from warded.model import Refusal, Session, ToolFailure
from warded.obligations.approvals import Approval, Status
from warded.provenance import check_source
from warded.server.accounts import Account
from warded.server.ledger import Filter
from warded.server.problems import ApiError
from warded.server.service import Service, authenticate, service_of

router = APIRouter(prefix="/v1")
NAME = Field(min_length=1, max_length=128)
SESSION = Field(min_length=1, max_length=256, description="The session (run) id.")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallBody(_Body):
    tool: str = NAME
    args: dict[str, Any] = Field(default_factory=dict)
    session: str = SESSION
    call_id: str | None = Field(
        None, min_length=1, max_length=256, description="Runs at most once; a resend is refused."
    )


class DecideBody(_Body):
    tool: str = NAME
    args: dict[str, Any] = Field(default_factory=dict)
    session: str = SESSION


class TrustBody(_Body):
    session: str = SESSION
    text: str = Field(
        min_length=1, description="Text the host vouches for, e.g. the user's own request."
    )
    source: str = Field(
        "user", min_length=1, max_length=64, description="The trusted source's name."
    )


class VerdictBody(_Body):
    reason: str | None = Field(None, max_length=2000)


class RefusalOut(BaseModel):
    refused: Literal[True]
    code: str
    kind: str
    message: str
    policy: str | None
    ref: str
    detail: str | None = None
    approval_id: str | None = None


class CallOut(BaseModel):
    status: Literal["ok", "refused", "failed"]
    result: Any = None
    refusal: RefusalOut | None = None
    failure: dict[str, Any] | None = None


class DecideOut(BaseModel):
    allowed: bool
    policies: list[str] = []
    bundle_version: str | None = None
    refusal: RefusalOut | None = None


class ToolOut(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    effect: str


class ToolsOut(BaseModel):
    tools: list[ToolOut]


class RecordsOut(BaseModel):
    records: list[dict[str, Any]]


class RecordOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    seq: int
    hash: str
    kind: str


class ApprovalOut(BaseModel):
    id: str
    status: str
    principal: str
    tool: str
    args: Any
    args_digest: str
    resource: dict[str, str]
    session: str
    labels: list[str]
    provenance: Any
    links: list[dict[str, Any]]
    group: str
    policy: str
    policy_description: str | None
    bundle_version: str
    created: float
    expires: float
    decided_by: str | None
    decided_at: float | None
    reason: str | None
    record: int | None


class ApprovalsOut(BaseModel):
    approvals: list[ApprovalOut]


class TrustOut(BaseModel):
    session: str
    source: str
    chars: int


class ReloadOut(BaseModel):
    bundle_version: str


def answer(outcome: Any) -> dict[str, Any]:
    """What `gate.call` returned, as the API's `CallOut`."""
    if isinstance(outcome, Refusal):
        return {"status": "refused", "refusal": outcome.to_dict()}
    if isinstance(outcome, ToolFailure):
        return {"status": "failed", "failure": outcome.to_dict()}
    return {"status": "ok", "result": jsonable_encoder(outcome)}


@router.get("/tools", response_model=ToolsOut, summary="The tools this agent can use")
async def tools(
    request: Request, session: Annotated[str, Query(min_length=1, max_length=256)]
) -> Any:
    service = service_of(request)
    agent = authenticate(request, ("agent",)).acts_as()
    specs = await run_in_threadpool(service.gate.tools, agent, Session(session))
    return JSONResponse(
        {
            "tools": [
                {
                    "name": s.name,
                    "description": s.description,
                    "parameters": s.parameters,
                    "effect": s.effect,
                }
                for s in specs
            ]
        }
    )


@router.post("/decide", response_model=DecideOut, summary="What a call would get now (dry run)")
async def decide(request: Request, body: DecideBody) -> Any:
    service = service_of(request)
    agent = authenticate(request, ("agent",)).acts_as()
    result = service.gate.decide(agent, body.tool, body.args, Session(body.session))
    if isinstance(result, Refusal):
        return JSONResponse({"allowed": False, "refusal": result.to_dict()})
    return JSONResponse(
        {
            "allowed": True,
            "policies": list(result.policies),
            "bundle_version": result.bundle_version,
        }
    )


@router.post("/calls", response_model=CallOut, summary="Decide and, if allowed, run one call")
async def call(request: Request, body: CallBody) -> Any:
    service = service_of(request)
    agent = authenticate(request, ("agent",)).acts_as()
    outcome = await service.gate.acall(
        agent, body.tool, body.args, Session(body.session), call_id=body.call_id
    )
    if isinstance(outcome, Refusal) and outcome.code == "approval_required":
        service.live.poke()
    return JSONResponse(answer(outcome))


SOURCE_RULE = (
    "a trusted source is named in lowercase letters, digits, '_' and '-', starting with a "
    "letter, and is neither 'untrusted' nor a name starting with 'tool'"
)


@router.post(
    "/trust", response_model=TrustOut, summary="Declare trusted text in a session (`trust` agents)"
)
async def trust(request: Request, body: TrustBody) -> Any:
    """The host (never the model: it holds no credential) declares text it vouches for,
    e.g. the user's own request, so that an argument found in it has `source` in
    `context.provenance` (`Gate.trust`, which audits it). Only an agent account the
    config's `trust` names, and only under the source names listed for it."""
    service = service_of(request)
    account = authenticate(request, ("agent",))
    try:
        check_source(body.source)
    except ValueError:
        raise ApiError(400, "invalid_request", f"source: {SOURCE_RULE}") from None
    if body.source not in service.config.trust.get(account.id, frozenset()):
        message = f"this agent may not declare trusted text as {body.source!r} (setting: trust)"
        raise ApiError(403, "forbidden", message)
    limit = service.gate.remember // 4  # so that no one declaration pushes most of a session out
    if len(body.text) > limit:
        message = f"text: {len(body.text)} characters; a trusted text has at most {limit}"
        raise ApiError(413, "payload_too_large", message)
    await run_in_threadpool(
        service.gate.trust,
        Session(body.session),
        body.text,
        source=body.source,
        declared_by=account.acts_as(),
    )
    return JSONResponse({"session": body.session, "source": body.source, "chars": len(body.text)})


@router.get("/audit", response_model=RecordsOut, summary="Audit records (agents: their own)")
async def audit(
    request: Request,
    after: Annotated[int | None, Query(ge=-1, description="Only records after this seq.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    tool: Annotated[str | None, Query(max_length=128)] = None,
) -> Any:
    service = service_of(request)
    account = authenticate(request, ("agent", "person"))
    if account.kind == "person" and "admin" not in account.roles:
        raise ApiError(403, "forbidden", "only admins read the whole audit log")
    principal = str(account.acts_as()) if account.kind == "agent" else None
    where = Filter(principal=principal, tool=tool, after=after)
    found = await run_in_threadpool(service.ledger.find, where, limit, False)
    return JSONResponse({"records": [r.to_json() for r in found]})


@router.get("/approvals", response_model=ApprovalsOut, summary="Approvals (approvers)")
async def approvals(request: Request, status: Status | None = None) -> Any:
    service = service_of(request)
    service.approver(authenticate(request, ("person",), "approver"))
    found = await run_in_threadpool(service.gate.approvals.approvals, status)
    views = await run_in_threadpool(lambda: [service.approval_view(a) for a in found])
    return JSONResponse({"approvals": views})


@router.get("/approvals/{approval_id}", response_model=ApprovalOut, summary="One approval")
async def approval(request: Request, approval_id: str) -> Any:
    """Approvers see any approval; an agent sees only approvals of its own calls."""
    service = service_of(request)
    account = authenticate(request, ("agent", "person"))
    if account.kind == "person":
        service.approver(account)
    found = await run_in_threadpool(_get, service, approval_id)
    if account.kind == "agent" and found.principal != str(account.acts_as()):
        raise ApiError(404, "not_found", "no such approval")
    return JSONResponse(await run_in_threadpool(service.approval_view, found))


@router.get(
    "/approvals/{approval_id}/record",
    response_model=RecordOut,
    summary="The decision record that asked for an approval (approvers)",
)
async def approval_record(request: Request, approval_id: str) -> Any:
    """The one audit record an approver reads: the gate's decision that held the call
    (arguments redacted as the gate recorded them), not the log around it."""
    service = service_of(request)
    service.approver(authenticate(request, ("person",), "approver"))
    found = await run_in_threadpool(held_record, service, approval_id)
    return JSONResponse(found.to_json())


def held_record(service: Service, approval_id: str) -> AuditRecord:
    """The decision record that asked for the approval; 404 for an unknown approval."""
    _get(service, approval_id)
    held = service.ledger.held(approval_id)
    record = service.ledger.record(held["record"]) if held is not None else None
    if record is None:
        raise ApiError(404, "not_found", "the approval's decision record is not in the log")
    return record


def _get(service: Service, approval_id: str) -> Approval:
    try:
        return service.gate.approvals.get(approval_id)
    except ApprovalError:
        raise ApiError(404, "not_found", "no such approval") from None


def decide_approval(
    service: Service, approval_id: str, account: Account, verdict: str, reason: str | None
) -> Approval:
    """Approve or deny on the desk as a person; ApiError for every refusal of the desk."""
    approver = service.approver(account)
    desk = service.gate.approvals
    try:
        decided = (desk.approve if verdict == "approve" else desk.deny)(
            approval_id, approver, reason
        )
    except ApprovalError as exc:
        status, code = _PROBLEMS[exc.problem]
        raise ApiError(status, code, str(exc)) from None  # type: ignore[arg-type]
    service.live.poke()
    return decided


_PROBLEMS = {
    "not_found": (404, "not_found"),
    "not_pending": (409, "conflict"),
    "expired": (409, "conflict"),
    "self_approval": (403, "forbidden"),
    "not_in_group": (403, "forbidden"),
    "not_an_approver": (403, "forbidden"),
}


def _verdict_route(verdict: Literal["approve", "deny"]) -> None:
    async def route(request: Request, approval_id: str, body: VerdictBody) -> Any:
        service = service_of(request)
        account = authenticate(request, ("person",), "approver")
        decided = await run_in_threadpool(
            decide_approval, service, approval_id, account, verdict, body.reason
        )
        return JSONResponse(await run_in_threadpool(service.approval_view, decided))

    router.add_api_route(
        f"/approvals/{{approval_id}}/{verdict}",
        route,
        methods=["POST"],
        response_model=ApprovalOut,
        summary=f"{verdict.capitalize()} a pending approval (approvers)",
    )


for _verdict in ("approve", "deny"):
    _verdict_route(_verdict)


@router.post("/admin/reload", response_model=ReloadOut, summary="Reload the bundle (admins)")
async def reload(request: Request) -> Any:
    service = service_of(request)
    authenticate(request, ("person",), "admin")
    try:
        version = await run_in_threadpool(service.gate.reload)
    except BundleError as exc:
        raise ApiError(400, "bundle_invalid", str(exc)) from None
    service.live.poke()
    return JSONResponse({"bundle_version": version})
