"""Gate nodes for the many-node tests (tests/nodes/test_nodes.py).

    python node_host.py SOCKET

The host loads warded and the bundles once, then forks a node for each
"spawn" line on stdin (it answers {"pid": …}); it exits at end of input. A
node connects to the Unix socket SOCKET, says {"hello": pid}, and answers one
JSON line per JSON command:

    {"cmd": "open", "url", "bundle": "banking" | "ledger" | "live", "effects",
     "follow": seconds | null}
        a Gate over a PostgresStore on `url` with a ManualClock; "live" serves
        the database's live bundle and follows it (LISTEN plus a check every
        `follow` seconds)                              → {"version": …}
    {"cmd": "calls", "calls": [call, …], "now": t}
        set the clock to t, run the calls on one thread each, released together
        by a barrier                                   → {"results": [result, …]}
    {"cmd": "loop", "call": call + {"counter": name, "start": k}}
        call again and again, argument `name` k, k + 1, …, sending
        {"progress": i, "result": …} after each, until a "stop" line
        arrives                                        → {"stopped": i}
    {"cmd": "version", "wait": v | null}
        the gate's bundle version (after waiting for the follower to swap to v)
                                                       → {"version": …}
    {"cmd": "close"}                                   → {"closed": true}

A call is {"principal", "tool", "args", "session", "call_id"?}; a result is
{"ran": …}, {"failed": true} or {"code", "approval_id"}. Every tool run
appends one JSON line to `effects` ({"node", "tool", "args", "mono"}: its
time on the machine's monotonic clock), the side effect the tests count.
`read_document` adds the label "untrusted" to its session; with a `path` of
"hold-before" or "hold-after" it tells the test {"in_tool": path} (before or
after its side effect) and waits for a line that never comes: the test kills
the node there.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from warded import Gate, ManualClock, PolicyBundle, Principal, Refusal, Session, ToolFailure
from warded.stores.live import Follower, LiveSource
from warded.stores.postgres import PostgresStore

HERE = Path(__file__).resolve().parent
BUNDLES = {
    "banking": HERE.parent.parent / "examples" / "banking" / "policies",
    "ledger": HERE.parent / "obligations" / "bundles" / "ledger",
}
BOUND = 60.0


class Lines:
    """JSON lines over a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.lock = threading.Lock()

    def send(self, **message: Any) -> None:
        with self.lock:
            self.sock.sendall((json.dumps(message) + "\n").encode())

    def pending(self) -> bool:
        if b"\n" in self.buf:
            return True
        ready, _, _ = select.select([self.sock], [], [], 0)
        return bool(ready)

    def receive(self) -> dict[str, Any] | None:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message


def summary(result: object) -> dict[str, Any]:
    if isinstance(result, Refusal):
        return {"code": result.code, "approval_id": result.approval_id}
    if isinstance(result, ToolFailure):
        return {"failed": True}
    return {"ran": result}


class Node:
    def __init__(self, lines: Lines, bundles: dict[str, PolicyBundle]) -> None:
        self.lines = lines
        self.bundles = bundles
        self.clock = ManualClock()
        self.gate: Gate | None = None
        self.store: PostgresStore | None = None
        self.follower: Follower | None = None
        self.fd = -1

    def effect(self, tool: str, args: dict[str, Any]) -> None:
        line = {"node": os.getpid(), "tool": tool, "args": args, "mono": time.monotonic()}
        os.write(self.fd, (json.dumps(line, sort_keys=True) + "\n").encode())

    def open(self, url: str, bundle: str, effects: str, follow: float | None) -> str:
        self.store = PostgresStore(url)
        if bundle == "live":
            source = LiveSource(self.store)
            gate = Gate(
                PolicyBundle.load(source.read()), source=source, store=self.store, clock=self.clock
            )
        else:
            gate = Gate(self.bundles[bundle], store=self.store, clock=self.clock)
        self.fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.register(gate)
        self.gate = gate
        if follow is not None:
            self.follower = Follower(gate, self.store, interval=follow).start()
            if not self.follower.listening.wait(BOUND):
                raise RuntimeError("the follower did not start listening")
        return gate.version

    def register(self, gate: Gate) -> None:
        @gate.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
        def send_money(recipient: str, amount: float, subject: str) -> str:
            self.effect(
                "send_money", {"recipient": recipient, "amount": amount, "subject": subject}
            )
            return "sent"

        @gate.tool
        def get_transactions(limit: int = 10) -> int:
            self.effect("get_transactions", {"limit": limit})
            return limit

        @gate.tool(effect="external", labels=["untrusted"])
        def read_document(path: str) -> str:
            if path == "hold-before":
                self.hold(path)
            self.effect("read_document", {"path": path})
            if path == "hold-after":
                self.hold(path)
            return "text"

        @gate.tool(effect="irreversible")
        def spend(memo: str, amount: int) -> str:
            self.effect("spend", {"amount": amount, "memo": memo})
            return "spent"

    def hold(self, where: str) -> None:
        self.lines.send(in_tool=where)
        self.lines.receive()  # the test kills this process before it answers
        os._exit(5)

    def call(self, c: dict[str, Any]) -> dict[str, Any]:
        assert self.gate is not None
        result = self.gate.call(
            Principal.agent(c["principal"]),
            c["tool"],
            c["args"],
            Session(c["session"]),
            call_id=c.get("call_id"),
        )
        return summary(result)

    def calls(self, calls: list[dict[str, Any]], now: float | None) -> list[dict[str, Any]]:
        if now is not None:
            self.clock.set(now)
        barrier = threading.Barrier(len(calls), timeout=BOUND)
        results: list[dict[str, Any]] = [{}] * len(calls)

        def run(i: int) -> None:
            barrier.wait()
            results[i] = self.call(calls[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(BOUND)
        return results

    def loop(self, call: dict[str, Any]) -> int:
        i = 0
        while not self.lines.pending():
            args = {**call["args"], call["counter"]: call["start"] + i}
            result = self.call({**call, "args": args})
            self.lines.send(progress=i, result=result)
            i += 1
        stop = self.lines.receive()
        assert stop is not None
        assert stop["cmd"] == "stop", stop
        return i

    def close(self) -> None:
        if self.follower is not None:
            self.follower.close()
        if self.store is not None:
            self.store.close()
        if self.fd >= 0:
            os.close(self.fd)
        self.gate, self.store, self.follower, self.fd = None, None, None, -1

    def serve(self) -> None:
        while (msg := self.lines.receive()) is not None:
            try:
                cmd = msg["cmd"]
                if cmd == "open":
                    answer: dict[str, Any] = {
                        "version": self.open(
                            msg["url"], msg["bundle"], msg["effects"], msg["follow"]
                        )
                    }
                elif cmd == "calls":
                    answer = {"results": self.calls(msg["calls"], msg.get("now"))}
                elif cmd == "loop":
                    answer = {"stopped": self.loop(msg["call"])}
                elif cmd == "version":
                    assert self.gate is not None
                    if msg.get("wait") and self.follower is not None:
                        self.follower.wait_for(msg["wait"], BOUND)
                    answer = {"version": self.gate.version}
                elif cmd == "close":
                    self.close()
                    answer = {"closed": True}
                else:
                    answer = {"error": f"unknown command {cmd!r}"}
            except Exception as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            self.lines.send(**answer)


def node(path: str, bundles: dict[str, PolicyBundle]) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    lines = Lines(sock)
    lines.send(hello=os.getpid())
    Node(lines, bundles).serve()


def warm_up(bundles: dict[str, PolicyBundle]) -> None:
    """Pay the first-use costs (schema derivation, slicing) once, before any fork."""
    here, there = socket.socketpair()
    for bundle in bundles.values():
        gate = Gate(bundle, clock=ManualClock())
        Node(Lines(here), bundles).register(gate)
        for principal, tool, args in (
            ("billing-bot", "get_transactions", {"limit": 1}),
            (
                "billing-bot",
                "send_money",
                {"recipient": "GB33BUKB20201555555555", "amount": 1, "subject": "w"},
            ),
            ("ops-bot", "spend", {"amount": 1, "memo": "w"}),
        ):
            gate.decide(Principal.agent(principal), tool, args, Session("warm"))
    here.close()
    there.close()


def main() -> None:
    path = sys.argv[1]
    bundles = {name: PolicyBundle.from_directory(p) for name, p in BUNDLES.items()}
    warm_up(bundles)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for line in sys.stdin:
        if line.strip() != "spawn":
            break
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                node(path, bundles)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 4
            finally:
                sys.stderr.flush()
                os._exit(code)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
