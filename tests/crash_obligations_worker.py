"""The worker for the kill -9 harness in tests/test_crash_obligations.py.

Like tests/crash_worker.py it runs as a zygote: it loads the ledger bundle
(tests/obligations/bundles/ledger) once, then answers one JSON line per JSON
command on stdin.

    {"cmd": "go", "run": 3, "db": ..., "effects": ..., "mode": "loop"}
        fork a child that works through a Gate over a SQLiteStore on `db`
        until it is killed; answer {"pid": <child pid>}
    {"cmd": "reap", "pid": <pid>}
        wait for that child; answer {"signal": n} or {"exit": n}

A child first finishes what killed children left open: it approves every
pending approval (as the human approver "alice") and runs every approved one
with `run_approved`. Then it loops: three budgeted `spend` calls (1000/day;
every fifth is declined in the tool, which is atomic, so its reservation is
released) to one `transfer` (approval from finance, 5000/day) that it asks
for, approves and retries. Each tool run appends its arguments as one fsynced
JSON line to `effects`: the side effect the harness checks against the store.
The clock is a ManualClock that moves 7 s per call, and each run starts on a
later day.

Modes: "loop" works until killed, reporting each step's phases ("call", "tool",
"effect", "asked" and "approved" for a transfer, "done"; tests/zygote.py) and
stopping dead at its pause point if it was given one; "die-in-transfer" asks
for, approves and retries one transfer whose tool kills its own process before
its effect; "resume" finishes what is open and then kills itself.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from support import TEST_KEY
from warded import Approver, Gate, ManualClock, PolicyBundle, Principal, Session, SQLiteStore
from zygote_worker import reporter, serve

LEDGER = Path(__file__).resolve().parent / "obligations" / "bundles" / "ledger"
KNOWN = "GB33BUKB20201555555555"
START = 1_767_225_600.0
RUN_SPACING = 2 * 86400.0  # every run starts two days after the last
STEP = 7.0
APPROVAL_TTL = 10 * 86400.0
MAX_CALLS = 20_000  # a child whose parent is lost stops by itself
ALICE = Approver("alice", frozenset({"finance"}))
OPS = Principal.agent("ops-bot")
SESSION = "crash"


def child(bundle: PolicyBundle, zygote: int, msg: dict[str, Any]) -> None:
    run, mode = msg["run"], msg["mode"]
    mark = reporter(msg.get("progress"), run, msg.get("pause"))
    clock = ManualClock(START + run * RUN_SPACING)
    store = SQLiteStore(msg["db"], timeout=30)
    gate = Gate(bundle, store=store, clock=clock, approval_ttl=APPROVAL_TTL, key=TEST_KEY)
    fd = os.open(msg["effects"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    step = -1  # finishing what earlier runs left open

    def effect(tool: str, args: dict[str, Any]) -> None:
        mark(step, "tool")
        os.write(fd, (json.dumps({"tool": tool, "args": args}, sort_keys=True) + "\n").encode())
        os.fsync(fd)
        mark(step, "effect")

    @gate.tool(effect="irreversible", atomic=True)  # declined: nothing happened
    def spend(memo: str, amount: int) -> str:
        if memo.startswith("fail"):
            raise RuntimeError("declined")
        effect("spend", {"amount": amount, "memo": memo})
        return "spent"

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def transfer(recipient: str, amount: int, memo: str) -> str:
        if mode == "die-in-transfer":
            os.kill(os.getpid(), signal.SIGKILL)
        effect("transfer", {"recipient": recipient, "amount": amount, "memo": memo})
        return "sent"

    session = Session(SESSION)
    for pending in gate.approvals.approvals("pending"):
        gate.approvals.approve(pending.id, ALICE)
    for approved in gate.approvals.approvals("approved"):
        gate.run_approved(approved.id, session)

    if mode == "resume":
        os.kill(os.getpid(), signal.SIGKILL)
    calls = 1 if mode != "loop" else MAX_CALLS
    for step in range(calls):
        if os.getppid() != zygote:
            break
        clock.advance(STEP)
        token = f"{run}-{step}"
        mark(step, "call")
        if step % 4 == 3 or mode != "loop":
            amount = (run * 53 + step * 37) % 900 + 100
            args = {"recipient": KNOWN, "amount": amount, "memo": token}
            held = gate.call(OPS, "transfer", args, session)
            approval_id = getattr(held, "approval_id", None)
            if approval_id is not None:
                mark(step, "asked")
                gate.approvals.approve(approval_id, ALICE)
                mark(step, "approved")
                gate.call(OPS, "transfer", args, session)
        else:
            memo = f"fail-{token}" if step % 5 == 2 else token
            amount = (run * 31 + step * 17) % 100 + 1
            gate.call(OPS, "spend", {"amount": amount, "memo": memo}, session)
        mark(step, "done")


def warm_up(bundle: PolicyBundle) -> None:
    """Pay the first-use costs once, before any fork."""
    gate = Gate(bundle, clock=ManualClock(START))

    @gate.tool(effect="irreversible")
    def spend(memo: str, amount: int) -> str:
        return "spent"

    @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def transfer(recipient: str, amount: int, memo: str) -> str:
        return "sent"

    session = Session("warm")
    gate.call(OPS, "spend", {"amount": 1, "memo": "warm"}, session)
    gate.call(OPS, "transfer", {"recipient": KNOWN, "amount": 100, "memo": "warm"}, session)


def main() -> None:
    bundle = PolicyBundle.from_directory(LEDGER)
    warm_up(bundle)
    serve(lambda msg, zygote: child(bundle, zygote, msg))


if __name__ == "__main__":
    main()
