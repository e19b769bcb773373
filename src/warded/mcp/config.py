"""The gateway's configuration: one TOML file, read once into an immutable value.

    policies = "policies"              # the policy directory (relative to this file)
    store = "warded-mcp.db"            # SQLite file for audit, approvals, session state
    pins = "warded-mcp.pins.json"      # pinned upstream definitions (`warded mcp pin`)
    shadow = "candidate"               # a candidate bundle decided and logged, never enforced

    [upstreams.fs]                     # id: letters, digits, "-" (never "_")
    command = "mcp-server-filesystem"  # stdio: command, args, env
    args = ["/srv/shared"]
    labels = []                        # labels every output of this upstream adds
    resources = false                  # forward resources (reads go through the gate)
    prompts = false                    # forward prompts (gets go through the gate)
    timeout = 60                       # seconds any one request may wait for its answer

    [upstreams.web]                    # Streamable HTTP: url, credential from the environment
    url = "https://tools.example/mcp"
    bearer_env = "WEB_TOKEN"
    labels = ["untrusted"]

    [principals.desktop]               # Agent::"desktop"
    session = "desktop"                # its warded session (default "mcp:<type>::<id>")
    trust = ["user"]                   # source names its client may declare (`trusted.py`)

    [[credentials]]                    # Streamable HTTP bearer credentials, stored hashed
    principal = "desktop"
    sha256 = "…"                       # `warded mcp token` prints a token and this line
    expires = 2027-01-01T00:00:00Z

    [stdio]
    principal = "desktop"

    [http]
    host = "127.0.0.1"
    port = 8765
    # anonymous = "desktop"          # no credential: loopback only, no public_url (local tools)

Each upstream tool is exposed as `<upstream id>__<tool name>`; upstream ids
have no "_", so the first "__" always splits a name in one way and no two
upstreams can shadow each other. Resources and prompts, when an upstream's
`resources` or `prompts` is true, are actions of their own:
`<upstream id>--resource` (reading any of its resources, the URI in the
arguments) and `<upstream id>--prompt--<prompt name>`; upstream ids have no
"--" and do not end in "-", so these never meet a tool's name or each other.
A mistake is a `GatewayConfigError` naming the key (`upstreams.fs.command: …`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from warded.errors import WardedError
from warded.model import Principal
from warded.provenance import APPROVED, check_source
from warded.tools import NAME

SEPARATOR = "__"
RESOURCE = "--resource"
PROMPT = "--prompt--"
UPSTREAM_ID = re.compile(r"^(?=.{1,32}$)[A-Za-z](?:-?[A-Za-z0-9])*$")
ENTITY_ID = re.compile(r"^[^\x00-\x1f]{1,128}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
TIMEOUT = 60.0  # seconds an upstream may take to answer one request, unless configured
MAX_TIMEOUT = 86400.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")
TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$")


class GatewayConfigError(WardedError):
    """The gateway configuration is invalid; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _UpstreamModel(_Strict):
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    bearer_env: str | None = None
    labels: list[str] = Field(default_factory=list)
    resources: bool = False
    prompts: bool = False
    timeout: float = TIMEOUT


class _PrincipalModel(_Strict):
    type: str = "Agent"
    session: str | None = None
    trust: list[str] = Field(default_factory=list)


class _CredentialModel(_Strict):
    principal: str
    sha256: str
    name: str | None = None
    expires: dt.datetime | None = None


class _StdioModel(_Strict):
    principal: str


class _HttpModel(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    path: str = "/mcp"
    public_url: str | None = None
    issuer: str | None = None
    anonymous: str | None = None


class _ConfigModel(_Strict):
    policies: str
    store: str = "warded-mcp.db"
    pins: str | None = None
    shadow: str | None = None
    upstreams: dict[str, _UpstreamModel]
    principals: dict[str, _PrincipalModel] = Field(default_factory=dict)
    credentials: list[_CredentialModel] = Field(default_factory=list)
    stdio: _StdioModel | None = None
    http: _HttpModel = Field(default_factory=_HttpModel)


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """One upstream MCP server."""

    id: str
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    url: str | None = None
    bearer_env: str | None = None
    labels: tuple[str, ...] = ()
    resources: bool = False
    prompts: bool = False
    timeout: float = TIMEOUT

    def bearer(self) -> str | None:
        """The credential sent upstream, read from the environment when it is needed."""
        if self.bearer_env is None:
            return None
        value = os.environ.get(self.bearer_env)
        if not value:
            raise GatewayConfigError(
                f"upstreams.{self.id}.bearer_env: environment variable {self.bearer_env} is not set"
            )
        return value


@dataclass(frozen=True, slots=True)
class Credential:
    """A bearer credential: who it is for, the SHA-256 of the token, when it expires."""

    principal: Principal
    sha256: str
    name: str
    expires: float | None


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str
    port: int
    path: str
    public_url: str | None
    issuer: str | None
    anonymous: Principal | None = None

    def resource_url(self, port: int | None = None) -> str:
        """The URL clients reach the gateway at (its protected-resource identifier)."""
        if self.public_url:
            return self.public_url
        return f"http://{self.host}:{port if port is not None else self.port}{self.path}"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole gateway configuration, paths resolved against the file's folder."""

    path: Path
    policies: Path
    store: str
    pins: Path | None
    shadow: Path | None
    upstreams: Mapping[str, UpstreamConfig]
    principals: Mapping[str, Principal]
    sessions: Mapping[Principal, str]
    credentials: tuple[Credential, ...]
    stdio_principal: Principal | None
    http: HttpConfig
    trust: Mapping[Principal, frozenset[str]] = field(default_factory=dict)

    def principal(self, name: str) -> Principal:
        """The principal a config or command line name refers to."""
        found = self.principals.get(name)
        if found is None:
            known = ", ".join(sorted(self.principals)) or "none"
            raise GatewayConfigError(f"no principal {name!r} in [principals] (known: {known})")
        return found

    def session_of(self, principal: Principal) -> str:
        """The warded session an MCP principal acts in (see docs/mcp.md, "Sessions")."""
        return self.sessions.get(principal) or f"mcp:{principal}"

    def trusted_sources(self, principal: Principal) -> frozenset[str]:
        """The source names this principal's client may declare trusted text under."""
        return self.trust.get(principal, frozenset())


def load(path: str | Path) -> GatewayConfig:
    """Read and check a gateway configuration; GatewayConfigError names the bad key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GatewayConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GatewayConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise GatewayConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(raw, path)


def parse(raw: Mapping[str, Any], path: Path) -> GatewayConfig:
    """Check a parsed TOML document; relative paths are taken from `path`'s folder."""
    try:
        model = _ConfigModel.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise GatewayConfigError(f"{path}: {_first_error(exc)}") from None
    return _build(model, path)


def _first_error(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = {
        "missing": "is required",
        "extra_forbidden": "is not a known key",
        "float_type": "must be a number",
    }.get(error["type"], error["msg"])
    return f"{where}: {message}"


def _fail(path: Path, key: str, message: str) -> GatewayConfigError:
    return GatewayConfigError(f"{path}: {key}: {message}")


def _build(model: _ConfigModel, path: Path) -> GatewayConfig:
    here = path.parent
    if not model.upstreams:
        raise _fail(path, "upstreams", "name at least one upstream server")
    upstreams = {uid: _upstream(uid, u, here, path) for uid, u in model.upstreams.items()}

    principals: dict[str, Principal] = {}
    sessions: dict[Principal, str] = {}
    trust: dict[Principal, frozenset[str]] = {}
    for name, p in model.principals.items():
        key = f"principals.{name}"
        if not ENTITY_ID.match(name):
            raise _fail(path, key, "a principal id is 1 to 128 printable characters")
        if not TYPE_NAME.match(p.type):
            raise _fail(path, f"{key}.type", f"{p.type!r} is not a Cedar entity type name")
        principal = Principal(p.type, name)
        principals[name] = principal
        if p.session is not None:
            if not ENTITY_ID.match(p.session):
                raise _fail(path, f"{key}.session", "a session id is 1 to 128 printable chars")
            sessions[principal] = p.session
        for source in p.trust:
            try:
                check_source(source)
            except ValueError as exc:
                raise _fail(path, f"{key}.trust", str(exc)) from None
            if source == APPROVED:
                message = f"{APPROVED!r} is what a person approved; no client declares it"
                raise _fail(path, f"{key}.trust", message)
        if p.trust:
            trust[principal] = frozenset(p.trust)

    credentials = []
    seen: set[str] = set()
    for i, c in enumerate(model.credentials):
        key = f"credentials[{i}]"
        if c.principal not in principals:
            raise _fail(path, f"{key}.principal", f"no principal {c.principal!r} in [principals]")
        digest = c.sha256.lower()
        if not SHA256.match(digest):
            raise _fail(path, f"{key}.sha256", "must be 64 hex digits (`warded mcp token`)")
        if digest in seen:
            raise _fail(path, f"{key}.sha256", "the same credential is listed twice")
        seen.add(digest)
        expires = None
        if c.expires is not None:
            if c.expires.tzinfo is None:
                raise _fail(path, f"{key}.expires", "give a time zone (e.g. 2027-01-01T00:00:00Z)")
            expires = c.expires.timestamp()
        credentials.append(
            Credential(principals[c.principal], digest, c.name or f"credential-{i}", expires)
        )

    stdio = None
    if model.stdio is not None:
        if model.stdio.principal not in principals:
            raise _fail(path, "stdio.principal", f"no principal {model.stdio.principal!r}")
        stdio = principals[model.stdio.principal]

    shadow = None
    if model.shadow is not None:
        shadow = (here / model.shadow).resolve()
        if not shadow.is_dir():
            raise _fail(path, "shadow", f"{shadow} is not a policy directory")
    h = model.http
    if not h.path.startswith("/"):
        raise _fail(path, "http.path", "must start with /")
    anonymous = None
    if h.anonymous is not None:
        if h.anonymous not in principals:
            raise _fail(path, "http.anonymous", f"no principal {h.anonymous!r} in [principals]")
        if h.host not in LOOPBACK:
            raise _fail(path, "http.anonymous", "only on a loopback host (127.0.0.1, ::1)")
        if h.public_url is not None:
            raise _fail(path, "http.anonymous", "not with public_url: a proxy serves it to others")
        anonymous = principals[h.anonymous]
    return GatewayConfig(
        path=path,
        policies=(here / model.policies).resolve(),
        store=model.store if model.store == ":memory:" else str((here / model.store).resolve()),
        pins=None if model.pins is None else (here / model.pins).resolve(),
        shadow=shadow,
        upstreams=upstreams,
        principals=principals,
        sessions=sessions,
        credentials=tuple(credentials),
        stdio_principal=stdio,
        http=HttpConfig(h.host, h.port, h.path, h.public_url, h.issuer, anonymous),
        trust=trust,
    )


def _upstream(uid: str, u: _UpstreamModel, here: Path, path: Path) -> UpstreamConfig:
    key = f"upstreams.{uid}"
    if not UPSTREAM_ID.match(uid):
        raise _fail(
            path,
            key,
            "an upstream id is a letter, then letters, digits or single '-' (no '_', not "
            "ending in '-'), at most 32 characters",
        )
    for label in u.labels:
        if not label or not label.isprintable():
            raise _fail(path, f"{key}.labels", "labels are non-empty printable strings")
    if not 0 < u.timeout <= MAX_TIMEOUT:  # NaN fails too
        message = f"seconds to wait for an answer: more than 0, at most {MAX_TIMEOUT:.0f}"
        raise _fail(path, f"{key}.timeout", message)
    if (u.command is None) == (u.url is None):
        raise _fail(path, key, "give either command (stdio) or url (Streamable HTTP)")
    if u.url is not None:
        if not u.url.startswith(("http://", "https://")):
            raise _fail(path, f"{key}.url", "must be an http:// or https:// URL")
        for name in ("args", "env", "cwd"):
            if getattr(u, name):
                raise _fail(path, f"{key}.{name}", "only for stdio upstreams (with command)")
        return UpstreamConfig(
            uid,
            "http",
            url=u.url,
            bearer_env=u.bearer_env,
            labels=tuple(u.labels),
            resources=u.resources,
            prompts=u.prompts,
            timeout=u.timeout,
        )
    if u.bearer_env is not None:
        raise _fail(path, f"{key}.bearer_env", "only for Streamable HTTP upstreams (with url)")
    if not u.command:
        raise _fail(path, f"{key}.command", "must not be empty")
    return UpstreamConfig(
        uid,
        "stdio",
        command=u.command,
        args=tuple(u.args),
        env=dict(u.env),
        cwd=None if u.cwd is None else (here / u.cwd).resolve(),
        labels=tuple(u.labels),
        resources=u.resources,
        prompts=u.prompts,
        timeout=u.timeout,
    )


def exposed_name(upstream: str, tool: str) -> str | None:
    """The gate tool name of an upstream tool, or None if it cannot be exposed as one."""
    name = f"{upstream}{SEPARATOR}{tool}"
    return name if NAME.fullmatch(name) else None  # `match` lets a final newline through


def split_name(name: str) -> tuple[str, str] | None:
    """(upstream id, upstream tool name) of an exposed name, or None."""
    upstream, sep, tool = name.partition(SEPARATOR)
    return (upstream, tool) if sep and UPSTREAM_ID.match(upstream) and tool else None


def resource_action(upstream: str) -> str:
    """The action (and gate tool) reading any resource of an upstream."""
    return f"{upstream}{RESOURCE}"


def prompt_action(upstream: str, prompt: str) -> str | None:
    """The action (and gate tool) getting one prompt, or None if it cannot be one."""
    name = f"{upstream}{PROMPT}{prompt}"
    return name if NAME.fullmatch(name) else None
