"""A worker process for the multi-process races in tests/obligations/test_races.py.

It loads the bundles once, then answers one JSON line per JSON command on stdin:

    {"cmd": "arm", "db": ..., "effects": ..., "bundle": "banking" | "ledger",
     "now": <epoch seconds>, "calls": [{"principal", "tool", "args", "session",
     "call_id"}, ...]}
        open a Gate over a SQLiteStore on `db` with a clock stopped at `now`;
        answer {"armed": <pid>}
    {"cmd": "go"}
        make the armed calls, one after another; answer {"results": [...]},
        each {"ran": <result>}, {"failed": true} or {"code": ..., "approval_id": ...}

The parent writes "go" to every armed worker at once: that pipe write is the
barrier. Every tool run appends one line to `effects` (O_APPEND, one write),
the side effect the parent counts. The worker exits at end of input.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from warded import (
    Gate,
    ManualClock,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    SQLiteStore,
    ToolFailure,
)

HERE = Path(__file__).resolve().parent
BUNDLES = {
    "banking": HERE.parent.parent / "examples" / "banking" / "policies",
    "ledger": HERE / "bundles" / "ledger",
}


def effect(fd: int, tool: str, args: dict[str, Any]) -> None:
    line = json.dumps({"pid": os.getpid(), "tool": tool, "args": args}, sort_keys=True)
    os.write(fd, (line + "\n").encode())


def armed_gate(bundle: PolicyBundle, kind: str, db: str, fd: int, now: float) -> Gate:
    gate = Gate(bundle, store=SQLiteStore(db, timeout=30), clock=ManualClock(now))
    if kind == "banking":

        @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
        def send_money(recipient: str, amount: float, subject: str) -> str:
            effect(fd, "send_money", {"recipient": recipient, "amount": amount, "subject": subject})
            return "sent"

    else:

        @gate.tool(effect="irreversible")
        def spend(memo: str, amount: int) -> str:
            effect(fd, "spend", {"amount": amount, "memo": memo})
            return "spent"

        @gate.tool
        def ping(n: int) -> int:
            effect(fd, "ping", {"n": n})
            return n

    return gate


def summary(result: object) -> dict[str, Any]:
    if isinstance(result, Refusal):
        return {"code": result.code, "approval_id": result.approval_id}
    if isinstance(result, ToolFailure):
        return {"failed": True}
    return {"ran": result}


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    bundles = {name: PolicyBundle.from_directory(path) for name, path in BUNDLES.items()}
    reply({"started": os.getpid()})
    gate: Gate | None = None
    calls: list[dict[str, Any]] = []
    fd = -1
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "arm":
            fd = os.open(msg["effects"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                gate = armed_gate(bundles[msg["bundle"]], msg["bundle"], msg["db"], fd, msg["now"])
            except Exception as exc:
                os.close(fd)
                reply({"error": f"{type(exc).__name__}: {exc}"})
                continue
            calls = msg["calls"]
            reply({"armed": os.getpid()})
        elif msg["cmd"] == "go":
            assert gate is not None
            results = [
                summary(
                    gate.call(
                        Principal.agent(c["principal"]),
                        c["tool"],
                        c["args"],
                        Session(c["session"]),
                        call_id=c.get("call_id"),
                    )
                )
                for c in calls
            ]
            gate.store.close()
            os.close(fd)
            gate = None
            reply({"results": results})


if __name__ == "__main__":
    main()
