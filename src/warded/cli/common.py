"""What every command shares: errors as one line, `--format`, entity and JSON parameters."""

from __future__ import annotations

import json
import re
import sqlite3
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

import click
import yaml

from warded.errors import BundleError, WardedError

_F = TypeVar("_F", bound=Callable[..., Any])
_EXPECTED = (WardedError, OSError, ValueError, yaml.YAMLError, sqlite3.Error)
_UID = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)::(".*")$', re.S)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class Failure(click.ClickException):
    """An error shown as one `error: …` line per message on stderr; exit 1."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages or ("failed",)

    def show(self, file: IO[Any] | None = None) -> None:
        for message in self.messages:
            click.echo(f"error: {_one_line(message)}", err=True)


class _Usage(click.UsageError):
    exit_code: ClassVar[int] = 1  # 2 is reserved for "refused"


class _Group(click.Group):
    """Turns expected exceptions into `error:` lines; usage errors exit 1, not 2.

    Anything unexpected becomes one `error: internal error …` line pointing to
    `warded --debug`, which prints the traceback as well.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **kw: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **kw)
        except click.UsageError as exc:
            raise _Usage(exc.format_message(), exc.ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _Usage(exc.format_message(), exc.ctx) from None
        except BundleError as exc:
            raise Failure(*(str(p) for p in exc.problems)) from None
        except BrokenPipeError:
            raise  # click exits quietly when the reader went away (`| head`)
        except _EXPECTED as exc:
            raise Failure(str(exc) or type(exc).__name__) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.parent is not None:
                raise  # the root group says it once
            if ctx.params.get("debug"):
                traceback.print_exc()
            raise Failure(internal_error(exc)) from None


def internal_error(exc: BaseException) -> str:
    """The one line an unexpected exception gets."""
    what = f"{type(exc).__name__}: {_one_line(exc)}"[:300]
    return f"internal error: {what} (run `warded --debug …` for the traceback)"


def format_option(*choices: str) -> Callable[[_F], _F]:
    """`--format` with `choices`, the first being the default."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="How to print the result.",
    )


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False))


def parse_uid(text: str, default_type: str | None = None) -> tuple[str, str]:
    """`Type::"id"` (namespaced types allowed), or a bare id of `default_type`."""
    m = _UID.match(text.strip())
    if m is None:
        if default_type is not None and text and '"' not in text and "::" not in text:
            return default_type, text
        raise ValueError(f'expected Type::"id", got {text!r}')
    try:
        entity_id = json.loads(m.group(2))
    except ValueError:
        entity_id = None
    if not isinstance(entity_id, str):
        raise ValueError(f"the id in {text!r} is not one quoted string")
    return m.group(1), entity_id


class _Entity(click.ParamType[tuple[str, str]]):
    name = "entity"

    def __init__(self, default_type: str | None = None) -> None:
        self.default_type = default_type

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return value if isinstance(value, tuple) else parse_uid(value, self.default_type)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _JsonObject(click.ParamType[dict[str, Any]]):
    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not JSON: {exc}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail("must be a JSON object", param, ctx)
        return parsed


_DIR = click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR"
)
_PRINCIPAL = click.option(
    "--principal",
    "-p",
    required=True,
    type=_Entity("Agent"),
    help='The agent: Agent::"billing-bot", or billing-bot for short.',
)
