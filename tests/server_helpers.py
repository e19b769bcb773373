"""What the service tests share: accounts, a configuration, a real server."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

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
        **extra,
    }
    path = directory / "service.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Served:
    """The app on a real uvicorn server on 127.0.0.1, port chosen by the OS."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
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
