"""The worker for the kill -9 harness in tests/test_crash.py.

It runs as a zygote: it imports warded and loads the banking bundle once, then
answers one JSON line per JSON command on stdin.

    {"cmd": "go", "run": 3, "db": ..., "effects": ..., "mode": "loop"}
        fork a child that makes calls through a Gate over a SQLiteStore
        on `db` until it is killed; answer {"pid": <child pid>}
    {"cmd": "reap", "pid": <pid>}
        wait for that child; answer {"signal": n} or {"exit": n}
    {"cmd": "quit"}

The zygote is single-threaded, so forking it is safe. The child's tool appends
the call's unique token (its `path` argument) to `effects` and fsyncs it: that
line is the side effect the harness checks against the audit log. Modes:
"loop" calls until killed; "die-before-effect" and "die-after-effect" make one
call whose tool kills its own process at that point. In "loop", the child
reports each step's phases ("call", "tool", "effect", "done"; tests/zygote.py)
and stops dead at its pause point, if it was given one.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from support import TEST_KEY
from warded import Gate, PolicyBundle, Principal, Session, SQLiteStore
from zygote_worker import reporter, serve

BANKING = Path(__file__).resolve().parent.parent / "examples" / "banking" / "policies"
MAX_CALLS = 20_000  # a child whose parent is lost stops by itself


def child(bundle: PolicyBundle, zygote: int, msg: dict[str, Any]) -> None:
    run, mode = msg["run"], msg["mode"]
    mark = reporter(msg.get("progress"), run, msg.get("pause"))
    store = SQLiteStore(msg["db"], timeout=30)
    gate = Gate(bundle, store=store, key=TEST_KEY)
    fd = os.open(msg["effects"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    step = 0

    @gate.tool(effect="external")
    def read_document(path: str) -> str:
        mark(step, "tool")
        if mode == "die-before-effect":
            os.kill(os.getpid(), signal.SIGKILL)
        os.write(fd, f"{path}\n".encode())
        os.fsync(fd)
        mark(step, "effect")
        if mode == "die-after-effect":
            os.kill(os.getpid(), signal.SIGKILL)
        return "read"

    billing, support = Principal.agent("billing-bot"), Principal.agent("support-bot")
    session = Session(f"crash-{run}")
    calls = 1 if mode != "loop" else MAX_CALLS
    for step in range(calls):
        if os.getppid() != zygote:
            break
        # Every seventh call is refused (support-bot cannot read documents).
        principal = support if step % 7 == 3 else billing
        mark(step, "call")
        gate.call(principal, "read_document", {"path": f"{run}-{step}"}, session)
        mark(step, "done")


def warm_up(bundle: PolicyBundle) -> None:
    """Pay the first-use costs (schema derivation, slicing) once, before any fork."""
    gate = Gate(bundle)

    @gate.tool(effect="external")
    def read_document(path: str) -> str:
        return "read"

    gate.call(Principal.agent("billing-bot"), "read_document", {"path": "warm"}, Session("warm"))


def main() -> None:
    bundle = PolicyBundle.from_directory(BANKING)
    warm_up(bundle)
    serve(lambda msg, zygote: child(bundle, zygote, msg))


if __name__ == "__main__":
    main()
