"""A scripted payments agent run against the banking policies.

It plays a model that asks for calls, some fine and some not, and shows what
warded answers: results, refusals, a payment that waits for a person who
approves it from the `warded approvals` command line, a burst of payments
stopped at the daily budget, and the audit trail in SQLite.

    .venv/bin/python examples/banking/agent.py [--db warded-banking.db]

Each run starts on a fresh database file (an earlier file of that name is
removed first), so what it prints holds on every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from warded import Gate, Principal, Refusal, Session, SQLiteStore, ToolFailure, verify
from warded.scanners import InjectionScanner, SecretsScanner

sys.path.insert(0, str(Path(__file__).parent))
from tools import Bank, register

HERE = Path(__file__).parent
# `warded` as it can be typed after the README's commands: the venv's script
WARDED = Path(sys.executable).parent / "warded"
KNOWN = "GB33BUKB20201555555555"
STRANGER = "XX00ATTACKER0000000000"


def build_gate(db: Path, bank: Bank) -> Gate:
    gate = Gate.from_directory(
        HERE / "policies",
        store=SQLiteStore(db),
        scanners=[SecretsScanner()],  # what the policy sees as context.scan
        output_scanners=[InjectionScanner()],  # a finding labels the session "injection"
    )
    register(gate, bank)
    return gate


def show(who: Principal, tool: str, args: dict[str, Any], result: Any) -> None:
    call = f"{who.id}: {tool}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
    if isinstance(result, Refusal):
        cited = f", policy {result.policy}" if result.policy else ""
        print(f"  REFUSED  {call}\n           -> {result.code}{cited}: {result.message}")
    elif isinstance(result, ToolFailure):
        print(f"  FAILED   {call}\n           -> {result.message}")
    else:
        print(f"  ran      {call}\n           -> {json.dumps(result)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, default=Path("warded-banking.db"))
    db: Path = parser.parse_args().db
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        stale.unlink(missing_ok=True)  # a fresh log each run: no budget spent, nothing pending
    bank = Bank()
    gate = build_gate(db, bank)
    billing, support = Principal.agent("billing-bot"), Principal.agent("support-bot")
    session = Session("demo-billing-1")

    print(f"policy bundle {gate.version}, audit log {db} (a fresh file each run)\n")
    for who in (billing, support):
        names = [t.name for t in gate.tools(who, session)]
        print(f"tools the model of {who.id} is shown: {', '.join(names)}")

    def call(who: Principal, tool: str, args: dict[str, Any], s: Session = session) -> Any:
        result = gate.call(who, tool, args, s)
        show(who, tool, args, result)
        return result

    print("\n1. Ordinary work is allowed")
    call(billing, "get_balance", {})
    call(billing, "send_money", {"recipient": KNOWN, "amount": 42.5, "subject": "paper"})

    print("\n2. A large payment waits for a person from finance")
    laptop = {"recipient": KNOWN, "amount": 1200, "subject": "laptop"}
    held = call(billing, "send_money", laptop)
    approval = held.approval_id if isinstance(held, Refusal) else None
    print(f"  approval {approval} is pending; the approvers decide from the command line:")
    for who in ("bob", "alice"):
        command = ["approvals", "approve", str(db), str(approval), "--as", who]
        command += ["--policies", _shown(HERE / "policies"), "--reason", "laptop for the new hire"]
        print(f"  $ {_command(command)}")
        done = subprocess.run([str(WARDED), *command], capture_output=True, text=True)
        print(f"    {(done.stdout or done.stderr).strip()}")
    print("  the agent retries the identical call: it runs, exactly once")
    call(billing, "send_money", laptop)
    print("  the same call again is a new payment: the approval was used up")
    call(billing, "send_money", laptop)

    print("\n3. A burst of parallel payments stops at the daily budget (300.00)")
    burst = [{"recipient": KNOWN, "amount": 80, "subject": f"invoice {k}"} for k in range(5)]
    results: list[Any] = [None] * len(burst)
    start = threading.Barrier(len(burst))

    def pay(k: int) -> None:
        start.wait()
        results[k] = gate.call(billing, "send_money", burst[k], Session(f"burst-{k}"))

    workers = [threading.Thread(target=pay, args=(k,)) for k in range(len(burst))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for args, result in zip(burst, results, strict=True):
        show(billing, "send_money", args, result)

    print("\n4. Unknown payees, bad arguments and negative amounts are refused")
    call(billing, "send_money", {"recipient": STRANGER, "amount": 10, "subject": "hi"})
    call(billing, "send_money", {"recipient": KNOWN, "amount": "lots", "subject": "x"})
    call(billing, "send_money", {"recipient": KNOWN, "amount": -50, "subject": "refund"})

    print("\n5. Tools outside an agent's boundary do not exist for it")
    hidden = call(support, "send_money", {"recipient": KNOWN, "amount": 1, "subject": "x"})
    never = call(support, "wire_all_funds", {})
    call(billing, "update_password", {"password": "hunter2"})
    same = isinstance(hidden, Refusal) and isinstance(never, Refusal)
    same = same and {**hidden.to_dict(), "ref": ""} == {**never.to_dict(), "ref": ""}
    print(f"  a hidden tool and a tool that never existed get the same answer: {same}")

    print("\n6. After untrusted content enters the session, payments are gone")
    call(billing, "read_document", {"path": "inbox/invoice-117.txt"})
    labels = sorted(gate.session_state(session).labels)
    print(f"  read_document's output comes from outside; session labels: {labels}")
    call(billing, "send_money", {"recipient": KNOWN, "amount": 95, "subject": "refund"})
    call(billing, "get_transactions", {"limit": 5})

    print("\n7. A secret in an argument never leaves")
    clean = Session("demo-billing-2")
    leak = {"recipient": KNOWN, "amount": 5, "subject": "key AKIAIOSFODNN7EXAMPLE"}
    call(billing, "send_money", leak, clean)
    record = list(gate.store.records())[-1].body
    print(f"  the audit log keeps: subject={record['args']['subject']!r}")

    print("\nThe audit trail (newest last):")
    records = list(gate.store.records())
    for record in records[-40:]:
        b = record.body
        if b["kind"] == "decision":
            what = b["decision"] + (f" ({b['code']})" if b["code"] else "")
            why = ", ".join(b["policies"]) or ", ".join(b["reasons"])[:60]
            print(f"  #{b['seq']:<4} {b['principal']:<24} {b['tool']:<16} {what:<30} {why}")
        elif b["kind"] == "outcome":
            print(f"  #{b['seq']:<4} {'':<24} {b['tool']:<16} outcome: {b['outcome']}")
        else:
            event = b["detail"].get("event", "event")
            by = f" by {b['detail']['by']}" if b["detail"].get("by") else ""
            print(f"  #{b['seq']:<4} {'':<24} {b['tool'] or '':<16} {event}{by}")
    result = verify(records)
    state = "verifies" if result.ok else f"BROKEN at record {result.first_bad}: {result.reason}"
    print(f"\n{result.size} records; the hash chain {state}; head {result.head[:16]}…")
    print(f"try: {_command(['audit', 'verify', str(db)])}")
    print(f"     {_command(['explain', _shown(HERE / 'policies'), '--principal', 'billing-bot'])}")
    print(f"     {_command(['approvals', 'list', str(db)])}")


def _shown(path: Path) -> str:
    """`path` relative to the working directory where it can be, as a person would type it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _command(args: list[str]) -> str:
    """A `warded` command line that works when copied from here into the same shell."""
    return shlex.join([_shown(WARDED), *args])


if __name__ == "__main__":
    main()
