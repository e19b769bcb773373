"""The service's configuration file, and the gate it builds.

A YAML file; relative paths are relative to the file. Every key is checked:
an unknown key or a wrong type is a `ConfigError` naming the key, never a
service that starts with a setting silently ignored.

    policies: policies/              # the bundle (reloaded by an admin)
    shadow: candidate/               # a bundle decided and logged beside it, never enforced
    store: warded.db                 # a SQLite file, sqlite:///path, or postgresql://…
    accounts: accounts.json          # agents, enforcement points, people (`warded serve account`)
    tools: tools.py:register         # register(gate): tools the service runs (optional)
    declared: [...]                  # tools the caller runs, declared by a JSON Schema
    mcp: gateway.toml                # MCP upstreams whose tools the service forwards calls to
    trust: {billing-bot: [user]}     # agent accounts that may declare trusted text (POST /v1/trust)
    scanners: [secrets]              # input scanners by name (optional)
    output_scanners: [injection]     # output scanners by name (optional)
    secret_key_file: service.key     # signs browser sessions; created if missing
    notify: {webhook: https://…, secret_file: webhook.key}
    public_url: https://pdp.example.com   # the AuthZEN policy_decision_point identifier
    trusted_proxies: [10.0.0.2]      # proxies whose X-Forwarded-For/-Proto are believed
    login_failures: 5                # failed sign-ins per window: per (address, account),
    login_account_failures: 20       # per account from every address,
    login_address_failures: 100      # per address at every account,
    login_window_seconds: 300        # within this sliding window
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warded.clock import Clock
from warded.errors import BundleError
from warded.gate import Gate
from warded.policy.bundle import PolicyBundle
from warded.provenance import APPROVED, check_source
from warded.scanners.base import Scanner, builtin_scanner
from warded.server.accounts import Limits
from warded.store import Store
from warded.stores.sqlite import SQLiteStore
from warded.tools import EFFECTS

DECLARED_RESULT = {"permitted": True}
_LOGIN = Limits()


class ConfigError(ValueError):
    """The configuration file is wrong; the message names the key."""


@dataclass(frozen=True, slots=True)
class ResourceFrom:
    """A declared tool's resource: a fixed type or an argument path, and a path for the id."""

    id_from: str
    type: str | None = None
    type_from: str | None = None

    def __call__(self, args: Mapping[str, Any]) -> tuple[str, str]:
        kind = self.type if self.type is not None else _at(args, self.type_from or "")
        return kind, _at(args, self.id_from)


@dataclass(frozen=True, slots=True)
class Declared:
    """A tool the caller runs: the service decides, records and answers a permit."""

    name: str
    parameters: Mapping[str, Any]
    description: str = ""
    effect: str = "external"
    resource: ResourceFrom | None = None
    sensitive: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret_file: Path


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    source: Path
    policies: Path
    store: str
    accounts: Path
    secret_key_file: Path
    tools: str | None = None
    declared: tuple[Declared, ...] = ()
    scanners: tuple[str, ...] = ()
    output_scanners: tuple[str, ...] = ()
    webhook: Webhook | None = None
    public_url: str | None = None
    shadow: Path | None = None
    mcp: Path | None = None
    trust: Mapping[str, frozenset[str]] = field(default_factory=dict)
    max_body_bytes: int = 1_000_000
    approval_ttl: float = 3600.0
    live_poll_seconds: float = 1.0
    login: Limits = field(default_factory=Limits)
    trusted_proxies: tuple[str, ...] = ()

    def secret_key(self) -> bytes:
        """The key that signs browser sessions; created (0600) on first use."""
        return _key_file(self.secret_key_file)


_KEYS: dict[str, type | tuple[type, ...]] = {
    "policies": str,
    "store": str,
    "accounts": str,
    "secret_key_file": str,
    "tools": str,
    "declared": list,
    "scanners": list,
    "output_scanners": list,
    "notify": dict,
    "public_url": str,
    "shadow": str,
    "mcp": str,
    "trust": dict,
    "max_body_bytes": int,
    "approval_ttl": (int, float),
    "live_poll_seconds": (int, float),
    "login_failures": int,
    "login_account_failures": int,
    "login_address_failures": int,
    "login_window_seconds": (int, float),
    "trusted_proxies": list,
}


_POSITIVE = [key for key, kinds in _KEYS.items() if kinds in (int, (int, float))]


def load_config(path: str | Path) -> ServiceConfig:
    """Read and check a configuration file; raises ConfigError or OSError."""
    source = Path(path).resolve()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping of settings")
    for key, value in data.items():
        kinds = _KEYS.get(key)
        if kinds is None:
            raise ConfigError(f"{source}: unknown setting {key!r}")
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ConfigError(f"{source}: {key} has the wrong type ({type(value).__name__})")
    for key in _POSITIVE:
        if key in data and not 0 < data[key] < math.inf:
            raise ConfigError(f"{source}: {key} must be a positive finite number, not {data[key]}")
    for key in ("policies", "store", "accounts"):
        if key not in data:
            raise ConfigError(f"{source}: {key} is required")
    here = source.parent

    def rel(value: str) -> Path:
        return (here / value).resolve()

    store = data["store"]
    if "://" not in store:
        store = f"sqlite:///{rel(store)}"
    notify = data.get("notify")
    return ServiceConfig(
        source=source,
        policies=rel(data["policies"]),
        store=store,
        accounts=rel(data["accounts"]),
        secret_key_file=rel(data.get("secret_key_file", "service.key")),
        tools=data.get("tools"),
        declared=tuple(_declared(source, i, d) for i, d in enumerate(data.get("declared", []))),
        scanners=_names(source, "scanners", data.get("scanners", [])),
        output_scanners=_names(source, "output_scanners", data.get("output_scanners", [])),
        webhook=_webhook(source, notify, rel) if notify is not None else None,
        public_url=data.get("public_url"),
        shadow=rel(data["shadow"]) if "shadow" in data else None,
        mcp=rel(data["mcp"]) if "mcp" in data else None,
        trust=_trust(source, data.get("trust", {})),
        max_body_bytes=data.get("max_body_bytes", 1_000_000),
        approval_ttl=float(data.get("approval_ttl", 3600.0)),
        live_poll_seconds=float(data.get("live_poll_seconds", 1.0)),
        login=Limits(
            pair=data.get("login_failures", _LOGIN.pair),
            account=data.get("login_account_failures", _LOGIN.account),
            address=data.get("login_address_failures", _LOGIN.address),
            window=float(data.get("login_window_seconds", _LOGIN.window)),
        ),
        trusted_proxies=_proxies(source, data.get("trusted_proxies", [])),
    )


def _proxies(source: Path, value: list[Any]) -> tuple[str, ...]:
    """`trusted_proxies`: the addresses or networks of the reverse proxies in front."""
    for item in value:
        if not isinstance(item, str) or not _network(item):
            message = "trusted_proxies lists IP addresses or networks (10.0.0.0/8)"
            raise ConfigError(f"{source}: {message}, not {item!r}")
    return tuple(value)


def _network(text: str) -> bool:
    try:
        ipaddress.ip_network(text)  # an address is a network of one
    except ValueError:
        return False
    return True


def _names(source: Path, key: str, value: list[Any]) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of scanner names")
    return tuple(value)


def _trust(source: Path, value: dict[Any, Any]) -> dict[str, frozenset[str]]:
    """`trust`: per agent account id, the source names it may declare trusted text under."""
    found: dict[str, frozenset[str]] = {}
    for account, names in value.items():
        key = f"{source}: trust.{account}"
        if not isinstance(account, str) or not account:
            raise ConfigError(f"{source}: trust is keyed by agent account ids")
        if not isinstance(names, list) or not names:
            raise ConfigError(f"{key} must be a non-empty list of source names (like [user])")
        for name in names:
            try:
                check_source(name)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from None
            if name == APPROVED:
                message = f"{APPROVED!r} is what a person approved; no agent declares it"
                raise ConfigError(f"{key}: {message}")
        found[account] = frozenset(names)
    return found


def _webhook(source: Path, notify: dict[str, Any], rel: Callable[[str], Path]) -> Webhook:
    url, secret_file = notify.get("webhook"), notify.get("secret_file")
    if set(notify) - {"webhook", "secret_file"}:
        raise ConfigError(f"{source}: notify takes webhook and secret_file only")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ConfigError(f"{source}: notify.webhook must be an http(s) URL")
    if not isinstance(secret_file, str):
        raise ConfigError(f"{source}: notify.secret_file is required (the HMAC key)")
    return Webhook(url, rel(secret_file))


def _declared(source: Path, index: int, item: Any) -> Declared:
    where = f"{source}: declared[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a mapping")
    allowed = {"name", "description", "parameters", "effect", "resource", "sensitive"}
    if set(item) - allowed:
        raise ConfigError(f"{where}: unknown keys {sorted(set(item) - allowed)}")
    name, parameters = item.get("name"), item.get("parameters", {"type": "object"})
    if not isinstance(name, str) or not isinstance(parameters, dict):
        raise ConfigError(f"{where}: name (a string) and parameters (a JSON Schema) are required")
    effect = item.get("effect", "external")
    if effect not in EFFECTS:
        raise ConfigError(f"{where}: effect must be one of {', '.join(EFFECTS)}")
    resource = item.get("resource")
    rule = None
    if resource is not None:
        if not isinstance(resource, dict) or set(resource) - {"type", "type_from", "id_from"}:
            raise ConfigError(f"{where}: resource takes type or type_from, and id_from")
        if "id_from" not in resource or ("type" in resource) == ("type_from" in resource):
            raise ConfigError(f"{where}: resource needs id_from and exactly one of type, type_from")
        rule = ResourceFrom(resource["id_from"], resource.get("type"), resource.get("type_from"))
    sensitive = item.get("sensitive", [])
    if not isinstance(sensitive, list) or not all(isinstance(s, str) for s in sensitive):
        raise ConfigError(f"{where}: sensitive must be a list of argument names")
    return Declared(
        name, parameters, str(item.get("description", "")), effect, rule, tuple(sensitive)
    )


def _at(args: Mapping[str, Any], path: str) -> str:
    value: Any = args
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"argument path {path!r} is missing")
        value = value[part]
    if not isinstance(value, str):
        raise TypeError(f"argument path {path!r} is not a string")
    return value


def _key_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="ascii") as f:
            path.chmod(0o600)
            f.write(secrets.token_hex(32))
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ConfigError(f"{path}: a key file must hold at least 32 characters")
    return key.encode()


def open_store(url: str) -> Store:
    """The store a URL names: `sqlite:///path` or `postgresql://…` (the postgres extra)."""
    if url.startswith("sqlite:///"):
        return SQLiteStore(url.removeprefix("sqlite://"))
    if url.startswith(("postgresql://", "postgres://")):
        try:
            module = importlib.import_module("warded.stores.postgres")
        except ImportError:
            raise ConfigError(
                "this warded has no PostgreSQL store yet (warded.stores.postgres)"
            ) from None
        store: Store = module.PostgresStore(url)
        return store
    raise ConfigError(f"store must be a SQLite path, sqlite:///… or postgresql://…, not {url!r}")


def build_gate(config: ServiceConfig, store: Store, clock: Clock | None = None) -> Gate:
    """The service's gate: the bundle, the scanners, the service's tools and the declared ones.

    On a store shared by several nodes (PostgreSQL) the bundle is the one the
    database says is live (`warded policy push`), read from it and followed
    while the service runs; `policies` is then only named in the message
    when nothing is live yet.
    """
    scanners = [_scanner(config, n) for n in config.scanners]
    output = [_scanner(config, n) for n in config.output_scanners]
    options: dict[str, Any] = {
        "store": store,
        "clock": clock,
        "approval_ttl": config.approval_ttl,
        "scanners": scanners,
        "output_scanners": output,
    }
    if getattr(store, "shared", False):
        from warded.stores.live import LiveSource

        source = LiveSource(store)  # type: ignore[arg-type]
        try:
            files = source.read()
        except BundleError:
            raise ConfigError(
                f"{config.source}: no bundle is live in the database; make one live first: "
                f"warded policy push {config.policies} --db URL"
            ) from None
        gate = Gate(PolicyBundle.load(files), source=source, **options)
    else:
        gate = Gate.from_directory(config.policies, **options)
    if config.tools:
        _registrar(config)(gate)
    for d in config.declared:
        gate.register(
            d.name,
            d.parameters,
            _permit,
            description=d.description,
            effect=d.effect,
            resource=d.resource,
            sensitive=d.sensitive,
        )
    return gate


def _permit(**_: Any) -> dict[str, bool]:
    return dict(DECLARED_RESULT)


def _scanner(config: ServiceConfig, name: str) -> Scanner:
    try:
        return builtin_scanner(name)
    except Exception as exc:
        raise ConfigError(f"{config.source}: scanner {name!r}: {exc}") from None


def _registrar(config: ServiceConfig) -> Callable[[Gate], Any]:
    """`file.py:function` (relative to the config) or `package.module:function`."""
    target, sep, attr = (config.tools or "").partition(":")
    if not sep or not attr:
        raise ConfigError(f"{config.source}: tools must be 'file.py:function' or 'module:function'")
    if target.endswith(".py"):
        path = (config.source.parent / target).resolve()
        spec = importlib.util.spec_from_file_location(f"warded_service_tools_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"{config.source}: cannot load tools from {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError(f"{config.source}: {config.tools} is not a function")
    registrar: Callable[[Gate], Any] = function
    return registrar
