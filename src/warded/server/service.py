"""The running service: its gate, accounts, ledger and live feed, and who the caller is."""

from __future__ import annotations

import hmac
import ipaddress
import math
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from warded.clock import Clock
from warded.errors import ApprovalError
from warded.gate import Gate
from warded.obligations.approvals import Approval, Approver
from warded.obligations.desk import approver_from_bundle
from warded.server.accounts import TOKEN_PREFIX, Account, AccountBook, Kind, Role, Scope, Throttle
from warded.server.config import ServiceConfig
from warded.server.ledger import Ledger
from warded.server.live import Live
from warded.server.problems import ApiError


@dataclass
class Service:
    config: ServiceConfig
    gate: Gate
    accounts: AccountBook
    throttle: Throttle
    clock: Clock
    ledger: Ledger
    live: Live
    declared: frozenset[str] = field(default_factory=frozenset)
    shadow_version: str | None = None

    def approver(self, account: Account) -> Approver:
        """A person with the approver role, as the live bundle's entities place them."""
        if "approver" not in account.roles:
            raise ApiError(403, "forbidden", "this account does not decide approvals")
        try:
            return approver_from_bundle(self.gate.bundle, account.id)
        except ApprovalError:
            message = "this account is not an Approver in the bundle"
            raise ApiError(403, "forbidden", message) from None

    def approval_view(self, a: Approval) -> dict[str, Any]:
        """An approval as people and agents see it: the arguments as the gate recorded them."""
        held = self.ledger.held(a.id) or {}
        info = self.gate.bundle.policies.get(a.policy)
        return {
            "id": a.id,
            "status": a.status,
            "principal": a.principal,
            "tool": a.tool,
            "args": held.get("args"),
            "args_digest": a.args_digest,
            "resource": dict(a.resource),
            "session": a.session,
            "labels": held.get("labels", []),
            "provenance": held.get("provenance"),
            "links": held.get("links", []),
            "group": a.group,
            "policy": a.policy,
            "policy_description": info.description if info is not None else None,
            "bundle_version": a.bundle_version,
            "created": a.created,
            "expires": a.expires,
            "decided_by": a.decided_by,
            "decided_at": a.decided_at,
            "reason": a.reason,
            "record": held.get("record"),
        }


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def client_address(request: Request) -> str:
    """Where the caller is, for throttling: the peer's address, or, from a
    `trusted_proxies` peer, the one its `X-Forwarded-For` names (uvicorn's
    ProxyHeadersMiddleware); an IPv6 address stands for its /64, which one host
    holds whole, and an IPv4-mapped one for its IPv4 address."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _key_id(token: str) -> str:
    """A token's key id (which account it claims to be), for throttling a guess at it
    apart from other accounts' failures at the same address; bounded."""
    return token.removeprefix(TOKEN_PREFIX).partition("_")[0][:32]


def authenticate(request: Request, kinds: tuple[Kind, ...], role: Role | None = None) -> Account:
    """The account behind the request's bearer token, if of one of `kinds` (and `role`)."""
    service = service_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthenticated", "a bearer token is required")
    address = client_address(request)
    keys: tuple[tuple[Scope, str], ...] = (
        ("pair", f"{address} token:{_key_id(token.strip())}"),
        ("address", address),
    )
    wait = service.throttle.retry_after(*keys)
    if wait > 0:
        message = "too many failed sign-ins; try again later"
        retry = {"retry-after": str(math.ceil(wait))}
        raise ApiError(429, "too_many_failures", message, headers=retry)
    account = service.accounts.by_token(token.strip()) if scheme.lower() == "bearer" else None
    if account is None:
        service.throttle.failed(*keys)
        raise ApiError(401, "unauthenticated", "the credential is not valid")
    if account.kind not in kinds or (role is not None and role not in account.roles):
        raise ApiError(403, "forbidden", "this account may not use this endpoint")
    return account


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
