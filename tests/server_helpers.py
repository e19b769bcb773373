"""What the service tests share: accounts, a configuration, a real server."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from link_tools import NOTES, SESSION, USER_SAID

ROOT = Path(__file__).resolve().parent.parent
BANKING = ROOT / "examples" / "banking" / "policies"
KNOWN = "GB33BUKB20201555555555"
PASSWORD = "correct horse battery"


@dataclass
class Tokens:
    billing: str
    support: str
    gateway: str
    alice: str  # approver in finance (the bundle's Approver::"alice")
    bob: str  # approver role, but in no group
    admin: str
    impostor: str  # a person named like the agent, approver role


def write_config(directory: Path, accounts: Path, **extra: Any) -> Path:
    shutil.copy(accounts, directory / "accounts.json")
    settings = {
        "policies": str(BANKING),
        "store": "warded.db",
        "accounts": "accounts.json",
        "tools": "service_tools:register",
        "secret_key_file": "service.key",
        "live_poll_seconds": 0.2,
        "login_failures": 1000,
        "login_account_failures": 1000,
        "login_address_failures": 1000,
        **extra,
    }
    path = directory / "service.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def sign_in(client: Any, who: str = "alice", password: str = PASSWORD) -> int:
    """Sign in on the pages (a TestClient or an httpx.Client); the answer's status."""
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={"id": who, "password": password, "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    status: int = answer.status_code
    return status


def post_call(client: Any, token: str, tool: str, args: dict[str, Any], **body: Any) -> Any:
    """`POST /v1/calls` as the agent of `token` (a TestClient or an httpx.Client); the
    answer's JSON, which is always a 200 (a refusal is an answer)."""
    answer = client.post(
        "/v1/calls", json={"tool": tool, "args": args, **body}, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def payment(amount: float, subject: str = "rent") -> dict[str, Any]:
    return {"recipient": KNOWN, "amount": amount, "subject": subject}


def prepare_links(client: Any, token: str) -> None:
    """In `link_tools.SESSION`: the user's words declared, then a page with injected
    orders read."""
    said = client.post(
        "/v1/trust", json={"session": SESSION, "text": USER_SAID}, headers=bearer(token)
    )
    assert said.status_code == 200, said.text
    page = post_call(client, token, "fetch", {"url": NOTES}, session=SESSION)
    assert page["status"] == "ok", page


def hold_message(client: Any, token: str, body: str) -> str:
    """Send a message in `link_tools.SESSION`; it must wait for an approval, whose id
    is returned."""
    answer = post_call(client, token, "send_message", {"to": "Bob", "body": body}, session=SESSION)
    assert answer["refusal"]["code"] == "approval_required", answer
    approval: str = answer["refusal"]["approval_id"]
    return approval


class Served:
    """The app on a real uvicorn server on 127.0.0.1, port chosen by the OS, run as
    `warded serve run` runs it."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="on",
                proxy_headers=False,  # as `warded serve run`: only `trusted_proxies` decides
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(600):
            if self.server.started:
                break
            self.thread.join(0.05)
        assert self.server.started, "uvicorn did not start within 30 s"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


SUBPROCESS_WAIT = 120.0  # seconds: a service in a subprocess on a loaded machine


@contextlib.contextmanager
def serve_run(config: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`warded serve run CONFIG OPTIONS` in a subprocess on a port the OS chose; its URL.

    The server's output goes to `server.log` beside the config."""
    command = [sys.executable, "-m", "warded.cli", "serve", "run", str(config), "--port", "0"]
    log = config.parent / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--no-access-log", *options],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield _address(process, log)
    finally:
        process.terminate()
        process.wait(SUBPROCESS_WAIT)


def _address(process: subprocess.Popen[bytes], log: Path) -> str:
    """The address uvicorn says it listens on (it chose the port)."""
    marker = "Uvicorn running on "
    for _ in range(int(SUBPROCESS_WAIT * 10)):
        text = log.read_text(errors="replace")
        if marker in text:
            return text.split(marker, 1)[1].split()[0]
        if process.poll() is not None:
            raise AssertionError(f"the service exited: {text}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.1)
    raise AssertionError(f"the service did not start in {SUBPROCESS_WAIT} s: {log.read_text()}")
