"""Real MCP peers for the gateway's tests: servers from npm and PyPI, the gateway as a process.

The npm packages come from tests/mcp/node (`npm ci` there; .ci/run does it)
and are started from node_modules/.bin, never through npx.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[2]
NODE = Path(__file__).resolve().parent / "node"
BIN = NODE / "node_modules" / ".bin"
EXAMPLE = ROOT / "examples" / "mcp"
SHIFTY = Path(__file__).resolve().parent / "servers" / "shifty.py"
WAIT = 60.0  # seconds any single step may take on a loaded machine


def node_bin(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in {NODE} (.ci/run does)")
    return str(path)


def toml(value: Any) -> str:
    """A TOML value for str, bool, int, float, list and dict (inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def write_config(
    folder: Path,
    policies: Path,
    upstreams: dict[str, dict[str, Any]],
    principals: dict[str, dict[str, Any]] | None = None,
    *,
    stdio: str | None = "desktop",
    credentials: list[dict[str, Any]] | None = None,
    extra: str = "",
) -> Path:
    """A gateway config in `folder`; the store is a SQLite file beside it."""
    lines = [f"policies = {toml(str(policies))}", 'store = "audit.db"', extra]
    for uid, spec in upstreams.items():
        lines.append(f"[upstreams.{uid}]")
        lines += [f"{k} = {toml(v)}" for k, v in spec.items()]
    for name, spec in (principals or {"desktop": {}}).items():
        lines.append(f"[principals.{json.dumps(name)}]")
        lines += [f"{k} = {toml(v)}" for k, v in spec.items()]
    for credential in credentials or []:
        lines.append("[[credentials]]")
        lines += [f"{k} = {v if k == 'expires' else toml(v)}" for k, v in credential.items()]
    if stdio is not None:
        lines += ["[stdio]", f"principal = {toml(stdio)}"]
    path = folder / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_schema(config: Path, policies: Path) -> None:
    """The Cedar schema `warded mcp schema` derives from the gateway's upstreams, written
    into the policy folder."""
    schema = subprocess.run(
        [sys.executable, "-m", "warded.cli", "mcp", "schema", str(config)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    ).stdout
    (policies / "schema.cedarschema").write_text(schema)


def filesystem(shared: Path) -> dict[str, Any]:
    return {"command": node_bin("mcp-server-filesystem"), "args": [str(shared)]}


def shifty(
    labels: list[str] | None = None, *, legacy: bool = False, **flags: bool
) -> dict[str, Any]:
    """The test server; flags: poisoned, broken_resources (see shifty.py)."""
    args = [str(SHIFTY), *(["--legacy"] if legacy else [])]
    args += [f"--{name.replace('_', '-')}" for name, on in flags.items() if on]
    return {"command": sys.executable, "args": args, "labels": labels or []}


def gateway_command(config: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "warded.cli", "mcp", "serve", str(config), *more]


@contextlib.asynccontextmanager
async def stdio_gateway(config: Path, mode: str = "auto", **options: Any) -> AsyncIterator[Client]:
    """The Python SDK's client talking to `warded mcp serve CONFIG` over stdio."""
    command, *args = gateway_command(config)
    params = StdioServerParameters(command=command, args=args)
    async with Client(params, mode=mode, read_timeout_seconds=WAIT, **options) as client:
        yield client


@contextlib.contextmanager
def http_gateway(config: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`warded mcp serve CONFIG --http --port 0`; yields its URL and its process."""
    process = subprocess.Popen(
        gateway_command(config, "--http", "--port", "0"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    found: list[str] = []
    listening = threading.Event()

    def drain() -> None:  # read every line, so the gateway never blocks on a full pipe
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            url = re.search(r"serving (http://\S+)", line)
            if url:
                found.append(url.group(1))
                listening.set()
        listening.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        listening.wait(WAIT)
        assert found, f"the gateway did not start: {''.join(lines)}"
        yield found[0], process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(WAIT)
        assert process.stderr is not None
        process.stderr.close()


def copy_example_policies(folder: Path) -> Path:
    target = folder / "policies"
    shutil.copytree(EXAMPLE / "policies", target)
    return target


def audit_records(db: Path) -> list[dict[str, Any]]:
    from warded import SQLiteStore

    store = SQLiteStore(db)
    try:
        return [r.body for r in store.records()]
    finally:
        store.close()


def refusal(result: Any) -> dict[str, Any] | None:
    """The refusal fields of a tool result, or None if it was not refused."""
    meta = result.meta or {}
    found = meta.get("warded/refusal")
    return dict(found) if found is not None else None


@contextlib.asynccontextmanager
async def bearer_client(url: str, token: str, **options: Any) -> AsyncIterator[Client]:
    """The Python SDK's client over Streamable HTTP with a bearer credential."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=WAIT) as http,
        Client(
            streamable_http_client(url, http_client=http), read_timeout_seconds=WAIT, **options
        ) as client,
    ):
        yield client


def without_ref(result: Any) -> dict[str, Any]:
    """A refused result as JSON with the audit record id (different per call) blanked."""
    body = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    ref = body["_meta"]["warded/refusal"]["ref"]
    return dict(json.loads(json.dumps(body).replace(ref, "REF")))
