"""Who may use the service: agents, enforcement points and people, with argon2-hashed secrets.

    agent    acts as exactly one principal (`Agent::"billing-bot"`); lists, decides
             and executes its own calls, reads its own records and approvals
    pep      an enforcement point (API gateway, another service): the AuthZEN API only
    person   signs in to the pages (password) or uses the API (token); roles:
             `approver` (decides approvals for the groups the bundle puts the
             `Approver` of the same id in) and `admin` (reloads the bundle,
             reads the whole audit log)

The accounts live in a JSON file written by `warded serve account`. A token is
`wd_<key id>_<secret>`: the key id finds the account, argon2 checks the
secret. A verified token is remembered for a minute (by its HMAC under a
key this process draws at random, so the cache holds nothing that checks a
token anywhere else), or until the file changes: argon2's cost is paid once
a minute per token and worker, not per request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import argon2

from warded.clock import Clock, SystemClock
from warded.model import Principal

Kind = Literal["agent", "pep", "person"]
Role = Literal["approver", "admin"]
KINDS: tuple[Kind, ...] = get_args(Kind)
ROLES: tuple[Role, ...] = get_args(Role)
TOKEN_PREFIX = "wd_"
_CACHE_LIMIT = 10_000
VERIFIED_SECONDS = 60.0
_hasher = argon2.PasswordHasher()


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    kind: Kind
    key_id: str
    token_hash: str
    principal: str | None = None  # agents only
    roles: frozenset[Role] = frozenset()
    password_hash: str | None = None

    def acts_as(self) -> Principal:
        if self.kind != "agent" or self.principal is None:
            raise PermissionError("only an agent acts as a principal")
        return Principal.parse(self.principal)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "principal": self.principal,
            "roles": sorted(self.roles),
            "key_id": self.key_id,
            "token_hash": self.token_hash,
            "password_hash": self.password_hash,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        kind, roles = data.get("kind"), data.get("roles", [])
        if kind not in KINDS or not all(r in ROLES for r in roles):
            raise ValueError(f"account {data.get('id')!r}: bad kind or roles")
        if kind != "person" and roles:
            raise ValueError(f"account {data.get('id')!r}: only people have roles")
        principal = data.get("principal")
        if (kind == "agent") != (principal is not None):
            raise ValueError(f"account {data.get('id')!r}: an agent, and only one, has a principal")
        if principal is not None:
            Principal.parse(principal)
        return cls(
            id=str(data["id"]),
            kind=kind,
            key_id=str(data["key_id"]),
            token_hash=str(data["token_hash"]),
            principal=principal,
            roles=frozenset(roles),
            password_hash=data.get("password_hash"),
        )


class AccountBook:
    """The accounts file, re-read whenever it changes on disk."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_key: dict[str, Account] = {}
        self._by_id: dict[str, Account] = {}
        self._verified: dict[bytes, tuple[Account, float]] = {}
        self._cache_key = secrets.token_bytes(32)

    def _fresh(self) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp == self._stamp:
            return
        with self._lock:
            accounts = self._read() if stamp != (0, 0) else []
            self._by_key = {a.key_id: a for a in accounts}
            self._by_id = {a.id: a for a in accounts}
            self._verified = {}
            self._stamp = stamp

    def _read(self) -> list[Account]:
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return [Account.from_json(a) for a in data.get("accounts", [])]

    def accounts(self) -> list[Account]:
        self._fresh()
        return list(self._by_id.values())

    def get(self, account_id: str) -> Account | None:
        self._fresh()
        return self._by_id.get(account_id)

    def by_token(self, token: str) -> Account | None:
        """The account a bearer token belongs to, or None for any token that is not valid."""
        self._fresh()
        raw = token.encode("utf-8", "surrogatepass")
        fingerprint = hmac.new(self._cache_key, raw, hashlib.sha256).digest()
        known = self._verified.get(fingerprint)
        if known is not None and known[1] > self.clock.now():
            return known[0]
        key_id, secret = _split(token)
        account = self._by_key.get(key_id) if key_id else None
        if account is None or not _check(account.token_hash, secret):
            return None
        with self._lock:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[fingerprint] = (account, self.clock.now() + VERIFIED_SECONDS)
        return account

    def by_password(self, account_id: str, password: str) -> Account | None:
        """The person with this id and password, or None."""
        self._fresh()
        account = self._by_id.get(account_id)
        if account is None or account.kind != "person" or account.password_hash is None:
            _hasher.hash("spend the same time as a real check")
            return None
        return account if _check(account.password_hash, password) else None

    def add(
        self,
        account_id: str,
        kind: Kind,
        *,
        principal: str | None = None,
        roles: frozenset[Role] = frozenset(),
        password: str | None = None,
    ) -> str:
        """Create or replace an account; returns its new token (shown once, stored hashed)."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        account = Account.from_json(
            {
                "id": account_id,
                "kind": kind,
                "principal": principal,
                "roles": sorted(roles),
                "key_id": key_id,
                "token_hash": _hasher.hash(secret),
                "password_hash": _hasher.hash(password) if password is not None else None,
            }
        )
        with self._lock:
            current = self._read() if self.path.exists() else []
            kept = [a for a in current if a.id != account_id] + [account]
            self._write(kept)
        return f"{TOKEN_PREFIX}{key_id}_{secret}"

    def remove(self, account_id: str) -> bool:
        with self._lock:
            current = self._read() if self.path.exists() else []
            kept = [a for a in current if a.id != account_id]
            self._write(kept)
        return len(kept) != len(current)

    def _write(self, accounts: list[Account]) -> None:
        body = json.dumps({"accounts": [a.to_json() for a in accounts]}, indent=2)
        partial = self.path.with_name(self.path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.path)


def _split(token: str) -> tuple[str | None, str]:
    if not token.startswith(TOKEN_PREFIX):
        return None, ""
    key_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    return (key_id, secret) if sep and secret else (None, "")


def _check(stored: str, given: str) -> bool:
    try:
        return _hasher.verify(stored, given)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


Scope = Literal["pair", "account", "address"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Failed sign-ins allowed within `window` seconds, per scope (the `login_*` settings)."""

    pair: int = 5  # one address at one account: guessing
    account: int = 20  # one account from every address together: distributed guessing
    address: int = 100  # one address at every account together: spraying
    window: float = 300.0


class Throttle:
    """Failed sign-ins in a sliding window, counted per key, each scope against its limit.

    A key with its limit of failures within `window` is refused until the oldest
    of them is `window` old. A refused attempt is not counted, so a key is never
    refused for longer than `window` after its last counted failure: an attacker
    delays a person at most that long after they stop, never for good. A success
    forgets its pair's failures (`sign_in_keys`).
    """

    def __init__(self, clock: Clock, limits: Limits | None = None) -> None:
        self.clock = clock
        self.limits = limits if limits is not None else Limits()
        self._failures: dict[tuple[Scope, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: tuple[Scope, str]) -> float:
        """Seconds until every key may try again: 0 when none is at its limit."""
        now = self.clock.now()
        wait = 0.0
        with self._lock:
            for key in keys:
                times, limit = self._recent(key, now), getattr(self.limits, key[0])
                if len(times) >= limit:  # free again when the limit-th newest failure ages out
                    wait = max(wait, times[-limit] + self.limits.window - now)
        return wait

    def failed(self, *keys: tuple[Scope, str]) -> None:
        now = self.clock.now()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, key: tuple[Scope, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: tuple[Scope, str], now: float) -> deque[float]:
        if len(self._failures) > _CACHE_LIMIT:
            cutoff = now - self.limits.window
            self._failures = {k: t for k, t in self._failures.items() if t and t[-1] > cutoff}
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.limits.window:
            times.popleft()
        return times


def sign_in_keys(
    address: str, account: str, device: str | None = None
) -> tuple[tuple[Scope, str], ...]:
    """What one sign-in attempt counts against: the pair, the account, the address; or,
    from a browser that signed in as this account before (`device`), that browser and
    account alone, so that guessing at the account elsewhere does not hold its owner."""
    if device is not None:
        return (("pair", f"device:{device} {account}"),)
    return (("pair", f"{address} {account}"), ("account", account), ("address", address))
