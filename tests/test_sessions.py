"""G17: session state lives in the store, and listing follows it (issue 8, items 6-8).

A `Session` is a handle: its labels and call count are rows of the store,
changed in the transactions of its decisions and outcomes. A new handle, a
restarted gate and another process on the same SQLite file all see the same
labels; labels only grow; a tool the labels forbid stays refused and is not
listed. Listing with a session uses partial evaluation with the session's
labels known; when partial evaluation fails in any way, scope analysis answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import cedarpy
import pytest

from held import HeldStore
from support import TEST_KEY, session_with
from warded import Gate, MemoryStore, Principal, Refusal, Session, SQLiteStore, Store

BILLING = Principal.agent("billing-bot")
SUPPORT = Principal.agent("support-bot")
BANKING = Path(__file__).resolve().parent.parent / "examples" / "banking" / "policies"
PAY = {"recipient": "GB33BUKB20201555555555", "amount": 20, "subject": "paper"}
ALL_BILLING = {"send_money", "get_balance", "get_transactions", "read_document"}
WAIT = 20.0


def untrusted_gate(store: Store) -> Gate:
    """The banking tools, with read_document's output declared untrusted."""
    gate = Gate.from_directory(BANKING, store=store, key=TEST_KEY)
    gate.register(
        "send_money",
        {"type": "object", "properties": {"recipient": {}, "amount": {"type": "number"}}},
        lambda **_: "sent",
        resource=lambda a: ("Payee", a["recipient"]),
    )
    gate.register("read_document", {"type": "object"}, lambda **_: "text", labels=["untrusted"])
    gate.register("get_balance", {"type": "object"}, lambda: 100.0)
    return gate


def listed(gate: Gate, principal: Principal, session: Session | None = None) -> set[str]:
    return {t.name for t in gate.tools(principal, session)}


def refused_by_label(answer: Any) -> bool:
    return isinstance(answer, Refusal) and (answer.code, answer.policy) == (
        "not_permitted",
        "session.untrusted-no-payments",
    )


# -- G17: the state is the store's -----------------------------------------------------


@pytest.mark.requirement("G17")
def test_a_new_handle_with_the_same_id_sees_the_labels() -> None:
    gate = untrusted_gate(MemoryStore())
    assert gate.call(BILLING, "read_document", {"path": "invoice.pdf"}, Session("run-1")) == "text"

    answer = gate.call(BILLING, "send_money", PAY, Session("run-1"))

    assert refused_by_label(answer)
    assert gate.session_state(Session("run-1")).labels == {"untrusted"}
    assert gate.session_state("run-1").calls == 2
    assert "send_money" not in listed(gate, BILLING, Session("run-1"))
    assert gate.call(BILLING, "send_money", PAY, Session("run-2")) == "sent"  # another id


@pytest.mark.requirement("G17")
def test_a_restarted_gate_on_the_same_file_sees_the_labels(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SQLiteStore(path)
    untrusted_gate(first).call(BILLING, "read_document", {"path": "x"}, Session("run-1"))
    first.close()

    second = SQLiteStore(path)
    gate = untrusted_gate(second)  # nothing carried over but the file
    answer = gate.call(BILLING, "send_money", PAY, Session("run-1"))

    assert refused_by_label(answer)
    assert "send_money" not in listed(gate, BILLING, Session("run-1"))
    assert listed(gate, BILLING, Session("run-2")) >= {"send_money"}
    second.close()


ANOTHER_PROCESS = textwrap.dedent(
    """
    import json, sys
    from warded import Gate, Principal, Session, SQLiteStore, Refusal
    gate = Gate.from_directory(sys.argv[1], store=SQLiteStore(sys.argv[2]))
    gate.register(
        "send_money",
        {"type": "object", "properties": {"amount": {"type": "number"}}},
        lambda **_: "sent",
        resource=lambda a: ("Payee", a["recipient"]),
    )
    pay = {"recipient": "GB33BUKB20201555555555", "amount": 20, "subject": "paper"}
    bot = Principal.agent("billing-bot")
    answer = gate.call(bot, "send_money", pay, Session(sys.argv[3]))
    print(json.dumps({
        "answer": answer.to_dict() if isinstance(answer, Refusal) else answer,
        "labels": sorted(gate.session_state(sys.argv[3]).labels),
        "listed": [t.name for t in gate.tools(bot, Session(sys.argv[3]))],
    }))
    """
)


@pytest.mark.requirement("G17")
def test_another_process_on_the_same_file_sees_the_labels(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    gate = untrusted_gate(store)
    gate.call(BILLING, "read_document", {"path": "x"}, Session("run-1"))

    def other(session: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", ANOTHER_PROCESS, str(BANKING), str(path), session],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    labelled, clean = other("run-1"), other("run-2")

    assert labelled["labels"] == ["untrusted"]
    assert labelled["answer"]["policy"] == "session.untrusted-no-payments"
    assert labelled["listed"] == []
    assert (clean["answer"], clean["listed"]) == ("sent", ["send_money"])
    assert gate.session_state("run-1").calls == 2  # the other process's call counted here too
    store.close()


@pytest.mark.requirement("G17")
def test_labels_only_grow(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    gate = untrusted_gate(store)
    s = Session("run-1")
    gate.call(BILLING, "read_document", {"path": "x"}, s)

    gate.label(s, ["pii"], reason="the host saw a customer record")
    with store.transaction() as tx:
        tx.update_session(s.id, labels=[])  # an update without labels removes nothing
    gate.call(BILLING, "get_balance", {}, s)

    assert gate.session_state(s).labels == {"untrusted", "pii"}
    events = [r.body for r in store.records() if r.body["kind"] == "event"]
    assert [(e["session"], e["detail"]["labels_added"]) for e in events] == [("run-1", ["pii"])]
    assert refused_by_label(gate.call(BILLING, "send_money", PAY, s))


@pytest.mark.requirement("G17")
def test_two_gates_labelling_one_session_at_once_lose_no_label(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]  # two connections, as two processes have
    gates = [untrusted_gate(s) for s in stores]
    s = Session("run-1")
    start = threading.Barrier(2, timeout=WAIT)
    failures: list[BaseException] = []

    def label(k: int) -> None:
        try:
            start.wait()
            for i in range(25):
                gates[k].label(s, [f"g{k}-{i}"])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=label, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)

    assert failures == []
    expected = {f"g{k}-{i}" for k in range(2) for i in range(25)}
    assert gates[0].session_state(s).labels == expected
    assert SQLiteStore(path).session(s.id).labels == expected


@pytest.mark.requirement("G17")
def test_a_label_added_between_a_decision_and_its_commit_decides_the_call_again(
    tmp_path: Path,
) -> None:
    store = HeldStore(SQLiteStore(tmp_path / "state.db"))
    gate = untrusted_gate(store)  # type: ignore[arg-type]
    other = untrusted_gate(SQLiteStore(tmp_path / "state.db"))  # another node, same store
    s = Session("run-1")
    answers: list[Any] = []
    payer = threading.Thread(
        target=lambda: answers.append(gate.call(BILLING, "send_money", PAY, s))
    )

    payer.start()
    assert store.arrived.wait(WAIT), "the payment never reached its commit"
    other.call(
        BILLING, "read_document", {"path": "injected.pdf"}, s
    )  # decided clean, not yet recorded
    store.release.set()
    payer.join(WAIT)

    assert not payer.is_alive()
    (answer,) = answers
    assert refused_by_label(answer)
    decision = next(r.body for r in store.records() if r.body["id"] == answer.ref)
    assert decision["request"]["context"]["session"]["labels"] == ["untrusted"]


# -- listing by session --------------------------------------------------------------------


@pytest.mark.requirement("G2")
@pytest.mark.requirement("G17")
def test_payments_are_not_listed_after_untrusted_content_and_are_listed_in_a_clean_session() -> (
    None
):
    gate = untrusted_gate(MemoryStore())
    tainted, clean = Session("run-1"), Session("run-2")
    everything = {"send_money", "read_document", "get_balance"}
    assert listed(gate, BILLING, tainted) == everything

    assert gate.call(BILLING, "read_document", {"path": "invoice.pdf"}, tainted) == "text"

    assert listed(gate, BILLING, tainted) == everything - {"send_money"}
    assert listed(gate, BILLING, clean) == everything
    assert listed(gate, BILLING) == everything  # no session: every call could be allowed
    assert listed(gate, SUPPORT, tainted) == {"get_balance"}
    # listing is not permission, and hiding by label is not hiding the tool: a call
    # by name is decided in full and refused by the guard, which the model may learn
    assert refused_by_label(gate.call(BILLING, "send_money", PAY, tainted))
    assert gate.call(BILLING, "send_money", PAY, clean) == "sent"


@pytest.mark.requirement("G17")
@pytest.mark.parametrize(
    "labels", [["untrusted "], ["Untrusted"], ['un"trusted'], ["untrusted\u200b"], ["\\"]]
)
def test_only_the_exact_label_the_guard_names_hides_payments(gate: Gate, labels: list[str]) -> None:
    s = session_with(gate, labels)

    assert "send_money" in listed(gate, BILLING, s)
    assert gate.call(BILLING, "send_money", PAY, s) == {"status": "sent"}


@pytest.mark.requirement("G17")
def test_the_listing_changes_as_soon_as_the_session_is_labelled(gate: Gate) -> None:
    s = Session("run-1")
    assert "send_money" in listed(gate, BILLING, s)  # cached for the empty label set

    gate.label(s, ["untrusted"])

    assert "send_money" not in listed(gate, BILLING, s)
    assert "send_money" in listed(gate, BILLING, Session("run-2"))


# -- when partial evaluation fails ---------------------------------------------------------


@pytest.fixture
def partial_evaluation_raises(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise RuntimeError("partial evaluation crashed")

    monkeypatch.setattr(cedarpy, "is_authorized_partial", broken)
    return calls


@pytest.mark.requirement("G2")
def test_a_listing_whose_partial_evaluation_raises_is_answered_by_scope_analysis(
    gate: Gate, partial_evaluation_raises: list[int]
) -> None:
    # update_password: an unconditional forbid covers it, so no call could be allowed
    assert listed(gate, BILLING) == ALL_BILLING
    assert listed(gate, SUPPORT) == {"get_balance", "get_transactions"}
    assert listed(gate, Principal.agent("nobody")) == set()
    assert partial_evaluation_raises
    tainted = session_with(gate, ["untrusted"])
    assert listed(gate, BILLING, tainted) == ALL_BILLING  # scope analysis over-approximates
    assert gate.call(BILLING, "send_money", PAY, session_with(gate)) == {"status": "sent"}
    assert refused_by_label(gate.call(BILLING, "send_money", PAY, tainted))
