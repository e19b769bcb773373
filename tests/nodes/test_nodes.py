"""G14 many nodes, same guarantees: several gate processes on one PostgreSQL.

The nodes are processes forked by tests/nodes/node_host.py, each a Gate over
its own PostgresStore, driven over a Unix socket. A round sends every node its
calls and only then reads the answers: the nodes are all blocked reading, so
the writes release them together (the barrier); inside a node, its callers
wait on a thread barrier. Side effects are lines the tools append to a file:
the count the guarantees are checked against, whatever the answers say. Each
test works in a schema of its own (tests/store_backends.py).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store_backends import KEY, pg_schema
from tcp_proxy import Proxy
from warded import (
    Approver,
    BundleFiles,
    DirectorySource,
    Gate,
    ManualClock,
    PolicyBundle,
    Principal,
    Refusal,
    Session,
    verify,
)
from warded.canonical import args_digest, canonical_json
from warded.cli import cli
from warded.store import Tx
from warded.stores.live import push
from warded.stores.postgres import PostgresStore

HERE = Path(__file__).resolve().parent
HOST = HERE / "node_host.py"
BANKING = HERE.parent.parent / "examples" / "banking" / "policies"
LEDGER = HERE.parent / "obligations" / "bundles" / "ledger"
NODES = 16
TRIALS = 100
BOUND = 60.0  # seconds; bounds every wait on a node
NOW = 1_767_225_600.0  # the nodes' ManualClock default
DAY = 86400.0
KNOWN = "GB33BUKB20201555555555"
PAY = {"recipient": KNOWN, "amount": 1200, "subject": "invoice"}
ALICE = Approver("alice", frozenset({"finance"}))
BILLING = Principal.agent("billing-bot")

pytestmark = pytest.mark.requirement("G14")


# -- the fleet ------------------------------------------------------------------------------


class Node:
    """The test's end of one node's socket."""

    def __init__(self, conn: socket.socket, pid: int, stderr: Callable[[], str]) -> None:
        self.conn = conn
        self.pid = pid
        self.buf = b""
        self.stderr = stderr

    def send(self, **message: Any) -> None:
        self.conn.sendall((json.dumps(message) + "\n").encode())

    def ready(self) -> bool:
        return b"\n" in self.buf

    def receive(self, bound: float = BOUND) -> dict[str, Any]:
        deadline = time.monotonic() + bound
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.conn], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                pytest.fail(f"node {self.pid} did not answer in {bound}s\n{self.stderr()}")
            chunk = self.conn.recv(65536)
            if not chunk:
                raise EOFError(f"node {self.pid} is gone")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        assert "error" not in answer, f"node {self.pid}: {answer['error']}\n{self.stderr()}"
        return answer

    def ask(self, **message: Any) -> dict[str, Any]:
        self.send(**message)
        return self.receive()


class Fleet:
    """A host process and the nodes it forked, each connected to the test's socket."""

    def __init__(self, tmp: Path) -> None:
        self.path = str(tmp / "nodes.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(64)
        self.listener.settimeout(BOUND)
        self._stderr_path = tmp / "host.stderr"
        self._stderr = self._stderr_path.open("wb")
        self.host = subprocess.Popen(
            [sys.executable, str(HOST), self.path],
            env={**os.environ, "WARDED_KEY": KEY},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.nodes: list[Node] = []

    def stderr(self) -> str:
        self._stderr.flush()
        return self._stderr_path.read_text(errors="replace")

    def spawn(self) -> Node:
        assert self.host.stdin is not None
        assert self.host.stdout is not None
        self.host.stdin.write(b"spawn\n")
        self.host.stdin.flush()
        ready, _, _ = select.select([self.host.stdout], [], [], BOUND)
        assert ready, f"the node host did not fork\n{self.stderr()}"
        pid = json.loads(self.host.stdout.readline())["pid"]
        conn, _ = self.listener.accept()
        node = Node(conn, pid, self.stderr)
        assert node.receive() == {"hello": pid}
        return node

    def replace(self, dead: Node) -> None:
        dead.conn.close()
        self.nodes[self.nodes.index(dead)] = self.spawn()

    def close(self) -> None:
        for node in self.nodes:
            node.conn.close()
        assert self.host.stdin is not None
        assert self.host.stdout is not None
        self.host.stdin.close()
        self.host.wait(BOUND)
        self.host.stdout.close()
        self.listener.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = Fleet(tmp_path_factory.mktemp("nodes"))
    try:
        f.nodes = [f.spawn() for _ in range(NODES)]
        yield f
    finally:
        f.close()


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schema of the test's own; the test's own gates share the nodes' key."""
    monkeypatch.setenv("WARDED_KEY", KEY)
    with pg_schema() as u:
        yield u


def everyone(nodes: Sequence[Node], messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send each node its message, then read every answer (the sends are the barrier)."""
    for node, message in zip(nodes, messages, strict=True):
        node.send(**message)
    return [node.receive() for node in nodes]


@contextmanager
def opened(
    nodes: Sequence[Node], url: str, bundle: str, effects: Path, follow: float | None = None
) -> Iterator[list[str]]:
    """The nodes, each with a gate on `url` and `bundle`; closed afterwards."""
    message = {"cmd": "open", "url": url, "bundle": bundle, "effects": str(effects)}
    versions = everyone(nodes, [{**message, "follow": follow}] * len(nodes))
    try:
        yield [v["version"] for v in versions]
    finally:
        for node in nodes:
            with suppress(EOFError, OSError):  # unless the test killed it
                node.ask(cmd="close")


def call(
    principal: str, tool: str, args: dict[str, Any], session: str, **kw: Any
) -> dict[str, Any]:
    return {"principal": principal, "tool": tool, "args": args, "session": session, **kw}


def side_effects(effects: Path) -> list[dict[str, Any]]:
    text = effects.read_text() if effects.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


def bodies(url: str) -> list[dict[str, Any]]:
    """Every record of the chain, which must verify."""
    store = PostgresStore(url)
    try:
        records = list(store.records())
    finally:
        store.close()
    assert verify(records).ok, verify(records)
    return [r.body for r in records]


def allowed(url: str) -> dict[str, dict[str, Any]]:
    """The enforced allow decisions, by (tool, args digest)."""
    return {
        (b["tool"], b["args_digest"]): b
        for b in bodies(url)
        if b["kind"] == "decision" and b["decision"] == "allow" and b["mode"] == "enforce"
    }


def digest_of(args: dict[str, Any]) -> str:
    """The keyed digest the nodes record for these arguments."""
    return args_digest(canonical_json(args), bytes.fromhex(KEY))


def assert_every_effect_was_decided(url: str, effects: Path) -> None:
    decided = allowed(url)
    for line in side_effects(effects):
        key = (line["tool"], digest_of(line["args"]))
        assert key in decided, f"side effect {line} has no committed allow decision"


# -- G8: one approval, sixteen nodes --------------------------------------------------------


@pytest.mark.requirement("G8")
def test_sixteen_nodes_racing_for_one_approval_run_it_exactly_once_in_every_trial(
    fleet: Fleet, url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    store = PostgresStore(url)
    desk = Gate(PolicyBundle.from_directory(BANKING), store=store, clock=ManualClock(NOW))

    @desk.tool(effect="irreversible", resource=lambda a: ("Payee", a["recipient"]))
    def send_money(recipient: str, amount: float, subject: str) -> str:
        raise AssertionError("the test's own gate only asks for approvals")

    try:
        with opened(fleet.nodes, url, "banking", effects):
            for t in range(TRIALS):
                pay, session = {**PAY, "subject": f"invoice {t}"}, f"race-{t}"
                held = desk.call(BILLING, "send_money", pay, Session(session))
                assert isinstance(held, Refusal)
                assert held.approval_id is not None
                desk.approvals.approve(held.approval_id, ALICE)

                message = {
                    "cmd": "calls",
                    "calls": [call("billing-bot", "send_money", pay, session)],
                }
                results = [r["results"][0] for r in everyone(fleet.nodes, [message] * NODES)]

                assert sum(1 for r in results if "ran" in r) == 1, (t, results)
                assert {r.get("code") for r in results if "ran" not in r} == {"approval_required"}
                assert desk.approvals.get(held.approval_id).status == "consumed"
    finally:
        store.close()

    sent = [line["args"]["subject"] for line in side_effects(effects)]
    assert sorted(sent) == sorted(f"invoice {t}" for t in range(TRIALS))
    consumers = Counter(
        b["detail"]["approval"]
        for b in bodies(url)
        if b["kind"] == "decision" and b["decision"] == "allow" and "approval" in b["detail"]
    )
    assert len(consumers) == TRIALS
    assert set(consumers.values()) == {1}
    assert_every_effect_was_decided(url, effects)


@pytest.mark.requirement("G9")
def test_sixteen_nodes_racing_on_one_call_id_run_it_at_most_once(
    fleet: Fleet, url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    with opened(fleet.nodes, url, "banking", effects):
        for t in range(20):
            messages = [
                {
                    "cmd": "calls",
                    "calls": [
                        call(
                            "billing-bot",
                            "get_transactions",
                            {"limit": t * 100 + i},
                            f"s{i}",
                            call_id=f"tc_{t}",
                        )
                    ],
                }
                for i in range(NODES)
            ]
            results = [r["results"][0] for r in everyone(fleet.nodes, messages)]
            assert sum(1 for r in results if "ran" in r) == 1, (t, results)
            assert {r.get("code") for r in results if "ran" not in r} == {"not_permitted"}
    assert len(side_effects(effects)) == 20


# -- G10: one budget, thirty-two callers on four nodes -----------------------------------------


@pytest.mark.requirement("G10")
def test_thirty_two_callers_on_four_nodes_never_spend_more_than_one_budget(
    fleet: Fleet, url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    nodes = fleet.nodes[:4]
    with opened(nodes, url, "ledger", effects):
        for t in range(TRIALS):
            messages = [
                {
                    "cmd": "calls",
                    "now": NOW + t * DAY,
                    "calls": [
                        call("ops-bot", "spend", {"amount": 150, "memo": f"{t}-{n}-{j}"}, f"s{n}")
                        for j in range(8)
                    ],
                }
                for n in range(4)
            ]
            results = [r for answer in everyone(nodes, messages) for r in answer["results"]]
            assert sum(1 for r in results if "ran" in r) == 6, (t, results)  # floor(1000/150)
            assert {r.get("code") for r in results if "ran" not in r} == {"limit_exceeded"}

    spent: Counter[str] = Counter(
        line["args"]["memo"].split("-")[0] for line in side_effects(effects)
    )
    assert spent == {str(t): 6 for t in range(TRIALS)}
    store = PostgresStore(url)
    try:
        for t in range(TRIALS):
            window = int(NOW + t * DAY) // int(DAY) * int(DAY)
            assert store.counter('budget|ledger.spend|Agent::"ops-bot"', window) == Decimal(900)
    finally:
        store.close()
    assert_every_effect_was_decided(url, effects)


# -- G6: a push while the nodes decide ----------------------------------------------------------


def revoked_reads() -> BundleFiles:
    """The banking bundle without the permit for billing-bot's reads."""
    files = DirectorySource(BANKING).read()
    reads = "\n\n".join(
        part
        for part in dict(files.policies)["reads.cedar"].split("\n\n")
        if '@id("reads.billing")' not in part
    )
    policies = tuple((n, reads if n == "reads.cedar" else t) for n, t in files.policies)
    return BundleFiles(policies, files.schema, files.entities)


def progress_until(nodes: Sequence[Node], enough: Callable[[list[int]], bool]) -> list[int]:
    """Read progress reports from every node until `enough(counts)`; the counts."""
    counts = [0] * len(nodes)
    deadline = time.monotonic() + BOUND
    while not enough(counts):
        waiting = [n for n in nodes if not n.ready()]
        ready, _, _ = select.select(
            [n.conn for n in waiting], [], [], max(0.0, deadline - time.monotonic())
        )
        assert ready or any(n.ready() for n in nodes), "no node made progress in time"
        for i, node in enumerate(nodes):
            if node.ready() or node.conn in ready:
                assert "progress" in node.receive()
                counts[i] += 1
    return counts


@pytest.mark.requirement("G6")
def test_after_a_push_is_acknowledged_no_node_executes_a_call_decided_on_the_old_bundle(
    fleet: Fleet, url: str, tmp_path: Path
) -> None:
    """Four nodes follow the live bundle; a fifth never hears of the push and must
    not act on its old bundle either."""
    effects = tmp_path / "effects"
    following, deaf = fleet.nodes[:4], fleet.nodes[4]
    nodes = [*following, deaf]
    store = PostgresStore(url)
    try:
        old, _ = push(store, DirectorySource(BANKING).read(), by="test")
        with (
            opened(following, url, "live", effects, follow=30.0) as versions,
            opened([deaf], url, "live", effects) as deaf_version,
        ):
            assert [*versions, *deaf_version] == [old] * 5
            for i, node in enumerate(nodes):
                loop = call("billing-bot", "get_transactions", {}, f"loop-{i}")
                node.send(cmd="loop", call={**loop, "counter": "limit", "start": i * 10**6})
            progress_until(nodes, lambda counts: min(counts) >= 5)

            new, _ = push(store, revoked_reads(), by="test")
            acknowledged = time.monotonic()

            progress_until(nodes, lambda counts: min(counts) >= 5)
            for node in nodes:
                node.send(cmd="stop")
            for node in nodes:
                while "stopped" not in node.receive():
                    pass
            swapped = everyone(following, [{"cmd": "version", "wait": new}] * 4)
    finally:
        store.close()

    assert new != old
    assert [v["version"] for v in swapped] == [new] * 4
    chain = bodies(url)
    pushed = next(
        b["seq"]
        for b in chain
        if b["detail"].get("event") == "policy.push" and b["detail"]["to"] == new
    )
    decisions = [b for b in chain if b["kind"] == "decision" and b["mode"] == "enforce"]
    assert not [b for b in decisions if b["seq"] > pushed and b["decision"] == "allow"], (
        "a read was allowed after the push revoked it"
    )
    assert [b for b in decisions if b["seq"] < pushed and b["decision"] == "allow"]
    late = [b for b in decisions if b["seq"] > pushed]
    assert late, "no node decided after the push"
    assert {b["code"] for b in late} <= {"unknown_tool", "not_permitted", "unavailable"}
    # Effects after the acknowledgement: only calls already in flight (decided
    # before the push), at most one per node.
    decided = allowed(url)
    in_flight = Counter()
    for line in side_effects(effects):
        intent = decided[(line["tool"], digest_of(line["args"]))]
        assert intent["bundle_version"] == old
        assert intent["seq"] < pushed
        if line["mono"] > acknowledged:
            in_flight[line["node"]] += 1
    assert all(n <= 1 for n in in_flight.values()), in_flight


@pytest.mark.requirement("G6")
def test_a_missed_notification_is_healed_by_the_periodic_check(
    fleet: Fleet, url: str, tmp_path: Path
) -> None:
    store = PostgresStore(url)
    try:
        old, _ = push(store, DirectorySource(BANKING).read())
        node = fleet.nodes[0]
        with opened([node], url, "live", tmp_path / "effects", follow=0.2):
            files = revoked_reads()
            new = PolicyBundle.load(files).version
            with store.transaction() as tx:  # what push does, without the notification
                tx.make_live(new, files, at=0.0, by=None)  # type: ignore[attr-defined]
                tx.conn.execute(b"SELECT pg_notify('elsewhere', '')")  # type: ignore[attr-defined]
            swapped = node.ask(cmd="version", wait=new)
    finally:
        store.close()
    assert old != new
    assert swapped == {"version": new}


# -- G11, G13: kill -9 of a node mid-call ------------------------------------------------------


def in_doubt(url: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["audit", "in-doubt", url, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


@pytest.mark.requirement("G11")
@pytest.mark.requirement("G13")
@pytest.mark.parametrize(("where", "effects_expected"), [("hold-before", 0), ("hold-after", 1)])
def test_a_node_killed_mid_call_leaves_its_call_visibly_in_doubt_and_the_others_go_on(
    fleet: Fleet, url: str, tmp_path: Path, where: str, effects_expected: int
) -> None:
    effects = tmp_path / "effects"
    victim, other = fleet.nodes[0], fleet.nodes[1]
    with opened([victim, other], url, "banking", effects):
        victim.send(cmd="calls", calls=[call("billing-bot", "read_document", {"path": where}, "s")])
        assert victim.receive() == {"in_tool": where}
        os.kill(victim.pid, signal.SIGKILL)
        with pytest.raises(EOFError):
            victim.receive()
        fleet.replace(victim)

        after = other.ask(
            cmd="calls", calls=[call("billing-bot", "get_transactions", {"limit": 7}, "s2")]
        )
        assert after["results"] == [{"ran": 7}]

    doubtful = in_doubt(url)
    assert [(d["tool"], d["principal"]) for d in doubtful] == [("read_document", str(BILLING))]
    assert (
        len([e for e in side_effects(effects) if e["tool"] == "read_document"]) == effects_expected
    )
    assert_every_effect_was_decided(url, effects)


# -- G17: labels set on one node ------------------------------------------------------------------


@pytest.mark.requirement("G17")
def test_labels_set_on_one_node_are_seen_by_the_next_call_on_another(
    fleet: Fleet, url: str, tmp_path: Path
) -> None:
    a, b = fleet.nodes[0], fleet.nodes[1]
    small = {"recipient": KNOWN, "amount": 20, "subject": "coffee"}
    with opened([a, b], url, "banking", tmp_path / "effects"):
        before = b.ask(cmd="calls", calls=[call("billing-bot", "send_money", small, "shared")])
        read = a.ask(
            cmd="calls", calls=[call("billing-bot", "read_document", {"path": "x"}, "shared")]
        )
        after = b.ask(cmd="calls", calls=[call("billing-bot", "send_money", small, "shared")])
        elsewhere = b.ask(cmd="calls", calls=[call("billing-bot", "send_money", small, "clean")])

    assert before["results"] == [{"ran": "sent"}]
    assert read["results"] == [{"ran": "text"}]
    assert after["results"] == [{"code": "not_permitted", "approval_id": None}]
    assert elsewhere["results"] == [{"ran": "sent"}]


# -- G1: a node losing its database connection mid-call ------------------------------------------


class Interrupting:
    """A store whose next transaction stops right after it began (the node holds
    the chain's lock), runs `meanwhile`, and goes on."""

    def __init__(self, inner: PostgresStore) -> None:
        self.inner = inner
        self.meanwhile: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return self._transaction(durable)

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[Tx]:
        with self.inner.transaction(durable=durable) as tx:
            meanwhile, self.meanwhile = self.meanwhile, None
            if meanwhile is not None:
                meanwhile()
            yield tx


@pytest.mark.requirement("G1")
@pytest.mark.requirement("G11")
def test_a_node_losing_its_database_mid_call_fails_closed_and_recovers_when_it_is_back(
    url: str,
) -> None:
    proxy, through = Proxy.before(url)
    store = Interrupting(PostgresStore(through))
    gate = Gate(PolicyBundle.from_directory(BANKING), store=store)  # type: ignore[arg-type]
    ran: list[int] = []

    @gate.tool
    def get_transactions(limit: int = 10) -> int:
        ran.append(limit)
        if limit == 4:
            proxy.down()  # the database goes away while the tool runs
        return limit

    def read(limit: int) -> object:
        return gate.call(BILLING, "get_transactions", {"limit": limit}, Session("s"))

    try:
        assert read(1) == 1

        store.meanwhile = proxy.cut  # inside the decision's transaction
        lost = read(2)
        proxy.down()
        down = read(3)
        proxy.up()
        deadline = time.monotonic() + BOUND
        while (back := read(4)) != 4:  # the pool reconnects on its own schedule
            assert time.monotonic() < deadline, "the node did not recover"
            assert isinstance(back, Refusal)
            assert back.code == "unavailable"
        proxy.up()  # the tool took it away again, after its call was decided
        while read(5) != 5:
            assert time.monotonic() < deadline, "the node did not recover"
    finally:
        store.inner.close()
        proxy.close()

    for refused in (lost, down):
        assert isinstance(refused, Refusal)
        assert refused.code == "unavailable"
    assert ran == [1, 4, 5]
    chain = bodies(url)
    decided = [
        b["args"]["limit"] for b in chain if b["kind"] == "decision" and b["decision"] == "allow"
    ]
    assert decided == [1, 4, 5]
    doubtful = in_doubt(url)
    assert [d["args_digest"] for d in doubtful] == [digest_of({"limit": 4})]
