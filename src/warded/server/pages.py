"""The pages people use: sign in, approvals (live), the audit browser, the bundle.

Server-rendered HTML (Jinja2, autoescaped); the only script is
`static/live.js`, which refreshes the approvals list when the server-sent
event stream says it changed. A session is a signed, HttpOnly, SameSite=Strict
cookie naming the person (the account as it was: replacing it ends the
session) and a CSRF token; every form carries that token and is refused
without it. The Content-Security-Policy allows nothing inline.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from warded.governance.document import document
from warded.governance.render import html_page
from warded.links import printable, source_words
from warded.model import Principal
from warded.server.accounts import Account, Role, sign_in_keys
from warded.server.api import decide_approval, held_record
from warded.server.ledger import LAST_SEQ, Filter
from warded.server.problems import ApiError
from warded.server.service import Service, client_address, same, service_of

router = APIRouter(include_in_schema=False)
COOKIE = "warded_session"
SESSION_SECONDS = 8 * 3600
DEVICE_COOKIE = "warded_device"  # a browser that signed in as an account before
DEVICE_SECONDS = 90 * 86400
KEEPALIVE_SECONDS = 15.0
NOTICE_SECONDS = 300
templates = Jinja2Templates(directory=str(resources.files("warded.server") / "templates"))


def _when(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = _when
templates.env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True)
templates.env.filters["source"] = source_words
templates.env.filters["printable"] = printable  # what the agent chose: nothing hidden
templates.env.filters["flagged"] = lambda links: sum(
    x["flagged"] for a in links for x in a["items"] or ()
)  # the links among an approval's view's `links` found in injected orders


class SignIn(Exception):
    """The page needs a signed-in person: a page redirects to /login, a fetch gets 401."""

    def __init__(self, fetch: bool) -> None:
        self.fetch = fetch


async def to_sign_in(request: Request, exc: SignIn) -> Response:
    return Response(status_code=401) if exc.fetch else _to_login()


@dataclass(frozen=True, slots=True)
class Person:
    """The signed-in person and their session's CSRF token."""

    account: Account
    csrf: str


def _signer(service: Service, purpose: str = "session") -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(service.config.secret_key(), salt=f"warded.{purpose}")


def _person(request: Request, role: Role | None = None, *, fetch: bool = False) -> Person:
    """The signed-in person (with `role`, if given); raises SignIn without a valid
    session cookie, and ApiError 403 for a person without the role."""
    service = service_of(request)
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise SignIn(fetch)
    try:
        data = _signer(service).loads(raw, max_age=SESSION_SECONDS)
        account = service.accounts.get(str(data["id"]))
        csrf, key = str(data["csrf"]), data["key"]
    except (BadSignature, KeyError, TypeError):
        raise SignIn(fetch) from None
    if account is None or account.kind != "person" or key != account.key_id:
        raise SignIn(fetch)  # gone, or replaced (a new password) since this session began
    if not account.roles:  # the API gives such a person nothing either
        raise ApiError(403, "forbidden", "this account has no role; an admin can give it one")
    if role is not None and role not in account.roles:
        raise ApiError(403, "forbidden", f"this page is for the {role} role")
    return Person(account, csrf)


def _approver(request: Request, *, fetch: bool = False) -> Person:
    """A signed-in person the API would let decide approvals: the approver role and an
    `Approver` in the live bundle (`Service.approver`), exactly as `GET /v1/approvals`."""
    person = _person(request, "approver", fetch=fetch)
    service_of(request).approver(person.account)
    return person


def _same_origin(request: Request) -> None:
    """Refuse a form a page of another origin posted (the browser says so in `Origin`)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != str(request.base_url).rstrip("/"):
        raise ApiError(403, "csrf_failed", "the form came from another origin")


async def _form(request: Request, csrf: str | None) -> dict[str, str]:
    """The posted form, if it carries the session's CSRF token and comes from this origin."""
    _same_origin(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    given = values.get("csrf", "")
    if csrf is None or not given or not same(given, csrf):
        raise ApiError(403, "csrf_failed", "the form's CSRF token is missing or wrong")
    return values


def _page(request: Request, name: str, code: int = 200, **values: Any) -> Response:
    return templates.TemplateResponse(request, name, values, status_code=code, headers=_no_store())


def _signed_page(request: Request, name: str, person: Person, **values: Any) -> Response:
    """A page of the signed-in part: the person's name and CSRF token go to the template."""
    return _page(request, name, me=person.account, csrf=person.csrf, **values)


def _to_login() -> Response:
    return RedirectResponse("/login", status_code=303)


# -- signing in ---------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    """The first page the person's roles open: approvals for approvers, else the audit log."""
    roles = _person(request).account.roles
    return RedirectResponse("/approvals" if "approver" in roles else "/audit", status_code=303)


@router.get("/login")
async def login_form(request: Request) -> Response:
    service = service_of(request)
    token = _signer(service).dumps({"login": secrets.token_hex(8)})
    return _page(request, "login.html", csrf=token, error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    service = service_of(request)
    signer = _signer(service)
    _same_origin(request)  # else another site could sign this browser in as someone else
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    retry = signer.dumps({"login": secrets.token_hex(8)})
    try:
        signer.loads(values.get("csrf", ""), max_age=3600)
    except BadSignature:
        return _page(request, "login.html", 403, csrf=retry, error="The form expired; try again.")
    who, password = values.get("id", "")[:256], values.get("password", "")[:1024]
    device = _device(service, request, who)
    keys = sign_in_keys(client_address(request), who, device)
    wait = service.throttle.retry_after(*keys)
    if wait > 0:
        error = f"Too many failed sign-ins. Try again in {math.ceil(wait / 60)} min."
        answer = _page(request, "login.html", 429, csrf=retry, error=error)
        answer.headers["retry-after"] = str(math.ceil(wait))
        return answer
    account = await run_in_threadpool(service.accounts.by_password, who, password)
    if account is None:
        service.throttle.failed(*keys)
        return _page(request, "login.html", 401, csrf=retry, error="Wrong id or password.")
    service.throttle.succeeded(keys[0])
    session = signer.dumps(
        {"id": account.id, "key": account.key_id, "csrf": secrets.token_urlsafe(24)}
    )
    answer = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https"
    answer.set_cookie(
        COOKIE, session, max_age=SESSION_SECONDS, httponly=True, samesite="strict", secure=secure
    )
    known = {"id": account.id, "device": device or secrets.token_hex(8)}
    answer.set_cookie(
        DEVICE_COOKIE,
        _signer(service, "device").dumps(known),
        max_age=DEVICE_SECONDS,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return answer


def _device(service: Service, request: Request, who: str) -> str | None:
    """The id of this browser, if it signed in as `who` before (its device cookie)."""
    try:
        data = _signer(service, "device").loads(
            request.cookies.get(DEVICE_COOKIE, ""), max_age=DEVICE_SECONDS
        )
        return str(data["device"]) if data["id"] == who else None
    except (BadSignature, KeyError, TypeError):
        return None


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request, _person(request).csrf)
    answer = _to_login()
    answer.delete_cookie(COOKIE)
    return answer


# -- approvals ----------------------------------------------------------------


def _approvals(service: Service) -> dict[str, Any]:
    everything = service.gate.approvals.approvals()
    pending = [service.approval_view(a) for a in everything if a.status == "pending"]
    decided = sorted(
        (a for a in everything if a.decided_at is not None and a.status != "pending"),
        key=lambda a: a.decided_at or 0,
        reverse=True,
    )[:20]
    return {"pending": pending, "decided": [service.approval_view(a) for a in decided]}


@router.get("/approvals")
async def approvals_page(request: Request) -> Response:
    service, person = service_of(request), _approver(request)
    lists = await run_in_threadpool(_approvals, service)
    return _signed_page(
        request,
        "approvals.html",
        person,
        version=service.live.version,
        notice=_notice(service, request.query_params.get("notice")),
        **lists,
    )


@router.get("/approvals/list")
async def approvals_list(request: Request) -> Response:
    service, person = service_of(request), _approver(request, fetch=True)
    lists = await run_in_threadpool(_approvals, service)
    return _signed_page(request, "_approvals.html", person, **lists)


@router.get("/approvals/events")
async def approvals_events(request: Request) -> Response:
    service = service_of(request)
    _approver(request, fetch=True)
    since = _position(request.query_params.get("v"))
    start = since if since is not None else service.live.version

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for version in service.live.changes(start, KEEPALIVE_SECONDS):
            yield {"event": "approvals", "data": str(version)}

    return EventSourceResponse(stream(), headers={"cache-control": "no-store"})


@router.post("/approvals/{approval_id}")
async def decide(request: Request, approval_id: str) -> Response:
    service, person = service_of(request), _approver(request)
    form = await _form(request, person.csrf)
    verdict = form.get("verdict")
    if verdict not in ("approve", "deny"):
        raise ApiError(400, "invalid_request", "verdict must be approve or deny")
    reason = form.get("reason", "").strip()[:2000] or None
    try:
        decided = await run_in_threadpool(
            decide_approval, service, approval_id, person.account, verdict, reason
        )
        notice = f"{decided.status}: {decided.tool} for {decided.principal} ({decided.id})"
    except ApiError as exc:
        notice = f"not done: {exc.message}"
    signed = _signer(service, "notice").dumps({"notice": notice})
    return RedirectResponse(
        "/approvals?" + urlencode({"notice": signed}), status_code=303, headers=_no_store()
    )


def _notice(service: Service, signed: str | None) -> str | None:
    """What this service said a decision did: a notice it signed, minutes ago, or none
    (a link someone else made cannot make the page say anything)."""
    if not signed:
        return None
    try:
        return str(_signer(service, "notice").loads(signed, max_age=NOTICE_SECONDS)["notice"])
    except (BadSignature, KeyError, TypeError):
        return None


def _no_store() -> dict[str, str]:
    return {"cache-control": "no-store"}


@router.get("/approvals/{approval_id}/record")
async def held_record_page(request: Request, approval_id: str) -> Response:
    """The decision record that asked for this approval, as `GET
    /v1/approvals/{id}/record` gives it: an approver reads this one record of the
    audit log, never the log (no position in it, no other record, no verify status)."""
    service, person = service_of(request), _approver(request)
    record = await run_in_threadpool(held_record, service, approval_id)
    return _signed_page(
        request, "record.html", person, record=record.body, hash=record.hash, status=None
    )


# -- audit --------------------------------------------------------------------


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    service, person = service_of(request), _person(request, "admin")
    q = request.query_params
    try:
        where = Filter(
            principal=_agent(q.get("agent")),
            tool=q.get("tool") or None,
            decision=q.get("decision") or None,
            since=_time(q.get("since")),
            until=_time(q.get("until")),
            before=_position(q.get("before")),
        )
        problem = None
    except ValueError as exc:
        where, problem = Filter(kind="none"), str(exc)
    records = await run_in_threadpool(service.ledger.find, where, 100)
    status = await run_in_threadpool(service.ledger.verified)
    return _signed_page(
        request,
        "audit.html",
        person,
        records=[r.body for r in records],
        status=status,
        q=dict(q),
        problem=problem,
        older=records[-1].seq if len(records) == 100 else None,
    )


def _position(value: str | None) -> int | None:
    """A version or record position from an address: ASCII digits that fit one, or None."""
    if value and value.isascii() and value.isdigit() and len(value) <= len(str(LAST_SEQ)):
        return int(value)
    return None


def _agent(value: str | None) -> str | None:
    if not value:
        return None
    if "::" in value:
        return str(Principal.parse(value))
    return str(Principal.agent(value))


def _time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a time: {value!r} (use 2026-01-31T14:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@router.get("/audit/{seq}")
async def record_page(request: Request, seq: int) -> Response:
    service, person = service_of(request), _person(request, "admin")
    record = await run_in_threadpool(service.ledger.record, seq)
    if record is None:
        raise ApiError(404, "not_found", "no such record")
    status = await run_in_threadpool(service.ledger.verified)
    return _signed_page(
        request, "record.html", person, record=record.body, hash=record.hash, status=status
    )


# -- the bundle ---------------------------------------------------------------


@router.get("/bundle")
async def bundle_page(request: Request) -> Response:
    service, person = service_of(request), _person(request)
    bundle = service.gate.bundle
    page = await run_in_threadpool(lambda: html_page(document(bundle, None, service.clock.now())))
    body = page.split("<body>", 1)[1].rsplit("</body>", 1)[0]  # escaped by the renderer
    return _signed_page(request, "bundle.html", person, governance=Markup(body))
