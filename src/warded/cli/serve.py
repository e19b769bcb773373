"""`warded serve`: run the HTTP service, and manage who may use it.

    warded serve run CONFIG [--host H] [--port P] [--workers N] [--shadow DIR]
    warded serve account add CONFIG --agent ID [--principal 'Agent::"id"']
    warded serve account add CONFIG --pep ID
    warded serve account add CONFIG --person ID --role approver [--role admin]
    warded serve account list|remove CONFIG ...
    warded serve openapi CONFIG

A new account's token is printed once; the accounts file keeps only its
argon2 hash. A person's password is read from the terminal (or stdin).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from warded.cli.common import Failure, _Group

_CONFIG = click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))


def _server() -> None:
    try:
        import warded.server  # noqa: F401
    except ImportError as exc:
        raise Failure(str(exc)) from None


@click.group(cls=_Group)
def serve() -> None:
    """The HTTP service: agent API, AuthZEN, approvals page, audit browser."""


@serve.command()
@_CONFIG
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option(
    "--shadow",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A candidate bundle decided and logged beside the live one, never enforced "
    "(replaces the file's `shadow`; report with `warded audit shadow`).",
)
def run(
    config: Path, host: str, port: int, workers: int, access_log: bool, shadow: Path | None
) -> None:
    """Serve CONFIG (a YAML file; see docs/service.md) with uvicorn."""
    _server()
    import uvicorn

    from warded.errors import BundleError
    from warded.policy.bundle import PolicyBundle
    from warded.server.asgi import CONFIG_ENV, SHADOW_ENV
    from warded.server.config import load_config

    loaded = load_config(config)  # a broken file fails here, once, with its message
    candidate = shadow if shadow is not None else loaded.shadow
    if candidate is not None:
        try:
            PolicyBundle.from_directory(candidate)
        except BundleError as exc:
            raise Failure(f"shadow bundle {candidate}: {exc}") from None
    os.environ[CONFIG_ENV] = str(config.resolve())
    if shadow is not None:
        os.environ[SHADOW_ENV] = str(shadow.resolve())
    uvicorn.run(
        "warded.server.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        proxy_headers=False,
    )


@serve.command()
@_CONFIG
def openapi(config: Path) -> None:
    """Print the service's OpenAPI document."""
    _server()
    from warded.server.app import create_app
    from warded.server.config import load_config

    click.echo(json.dumps(create_app(load_config(config)).openapi(), indent=2))


@serve.group(cls=_Group)
def account() -> None:
    """Add, list and remove the service's accounts."""


@account.command()
@_CONFIG
@click.option("--agent", "agent", default=None, help="An agent account with this id.")
@click.option("--principal", default=None, help='The agent\'s principal (default Agent::"ID").')
@click.option("--pep", "pep", default=None, help="An enforcement point (AuthZEN) account.")
@click.option("--person", "person", default=None, help="A person (pages, approvals API).")
@click.option("--role", "roles", multiple=True, type=click.Choice(["approver", "admin"]))
@click.option("--password-stdin", is_flag=True, help="Read the person's password from stdin.")
def add(
    config: Path,
    agent: str | None,
    principal: str | None,
    pep: str | None,
    person: str | None,
    roles: tuple[str, ...],
    password_stdin: bool,
) -> None:
    """Create or replace an account; prints its new token once."""
    _server()
    from warded.model import Principal
    from warded.server.accounts import AccountBook
    from warded.server.config import load_config

    chosen = [(k, v) for k, v in (("agent", agent), ("pep", pep), ("person", person)) if v]
    if len(chosen) != 1:
        raise Failure("give exactly one of --agent, --pep, --person")
    kind, account_id = chosen[0]
    if roles and kind != "person":
        raise Failure("only a person has roles")
    if principal is not None and kind != "agent":
        raise Failure("only an agent has a principal")
    password = None
    if kind == "person":
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        if len(password) < 8:
            raise Failure("a password needs at least 8 characters")
    if kind == "agent":
        principal = str(Principal.parse(principal) if principal else Principal.agent(account_id))
    book = AccountBook(load_config(config).accounts)
    token = book.add(
        account_id,
        kind,  # type: ignore[arg-type]
        principal=principal,
        roles=frozenset(roles),  # type: ignore[arg-type]
        password=password,
    )
    click.echo(f"{kind} {account_id}" + (f" acting as {principal}" if principal else ""))
    click.echo(f"token (shown once): {token}")


@account.command("list")
@_CONFIG
def list_accounts(config: Path) -> None:
    """The accounts, without secrets."""
    _server()
    from warded.server.accounts import AccountBook
    from warded.server.config import load_config

    for a in AccountBook(load_config(config).accounts).accounts():
        extra = a.principal or ",".join(sorted(a.roles))
        click.echo(f"{a.kind:<7} {a.id:<24} {extra}")


@account.command()
@_CONFIG
@click.argument("account_id")
def remove(config: Path, account_id: str) -> None:
    """Remove an account; its token and password stop working at once."""
    _server()
    from warded.server.accounts import AccountBook
    from warded.server.config import load_config

    if not AccountBook(load_config(config).accounts).remove(account_id):
        raise Failure(f"no account {account_id!r}")
    click.echo(f"removed {account_id}")
