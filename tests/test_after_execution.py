"""After a tool ran, nothing escapes `gate.call` (issue 8, item 2).

Every path after execution writes the outcome and applies the tool's labels,
and the caller gets the result or a `ToolFailure` — except a
KeyboardInterrupt, which is re-raised once its outcome is recorded. A caller
that got an exception could not know the side effect happened, and would
repeat it.
"""

from __future__ import annotations

import asyncio
import functools
from decimal import Decimal
from typing import Any

import pytest

from support import TEST_KEY
from tiny import ALLOW, tiny
from warded import Gate, ManualClock, MemoryStore, Principal, Refusal, Session, ToolFailure
from warded.scanners import Finding

BOT = Principal.agent("bot")
START = 1_767_225_600
BUDGET_KEY = f"budget|pay|{BOT}"


def bodies(gate: Gate) -> list[dict[str, Any]]:
    return [r.body for r in gate.store.records()]


def outcome_of(gate: Gate, ref: str) -> dict[str, Any]:
    (outcome,) = [b for b in bodies(gate) if b["kind"] == "outcome" and b["id"] == ref]
    return outcome


def only_outcome(gate: Gate) -> dict[str, Any]:
    (outcome,) = [b for b in bodies(gate) if b["kind"] == "outcome"]
    return outcome


# -- output scanners that fail ------------------------------------------------------


class Failing:
    """An output scanner that raises on whatever it is given."""

    name = "secrets"

    def __init__(self) -> None:
        self.scanned = 0

    def scan(self, text: str) -> list[Finding]:
        self.scanned += 1
        raise RuntimeError("scanner crashed")


def fetch_gate(redact: bool, scanner: Any) -> tuple[Gate, list[int]]:
    note = '@redact("secrets")\n' if redact else ""
    bundle = tiny({"fetch": "{}"}, f'@id("fetch")\n{note}permit (principal, action, resource);\n')
    gate = Gate(bundle, store=MemoryStore(), key=TEST_KEY, output_scanners=[scanner])
    ran: list[int] = []

    def fetch() -> dict[str, str]:
        ran.append(1)
        return {"page": "whatever the web said"}

    gate.register("fetch", {"type": "object"}, fetch, labels=["web"])
    return gate, ran


@pytest.mark.requirement("G1")
def test_an_output_scanner_that_raises_labels_the_session_as_if_it_had_found_something() -> None:
    scanner = Failing()
    gate, ran = fetch_gate(redact=False, scanner=scanner)
    s = Session("s")

    result = gate.call(BOT, "fetch", {}, s)

    assert result == {"page": "whatever the web said"}  # nothing had to be masked
    assert ran == [1]
    assert scanner.scanned > 0
    assert gate.session_state(s).labels == {"secrets", "web"}
    outcome = only_outcome(gate)
    assert outcome["outcome"] == "ok"
    assert outcome["detail"]["scan_error"] == "RuntimeError"
    assert outcome["detail"]["labels_added"] == ["secrets", "web"]


@pytest.mark.requirement("G1")
def test_a_result_that_redact_needed_scanned_is_withheld_when_the_scanner_raises() -> None:
    gate, ran = fetch_gate(redact=True, scanner=Failing())
    s = Session("s")

    result = gate.call(BOT, "fetch", {}, s)

    assert isinstance(result, ToolFailure)
    assert ran == [1]
    assert "whatever the web said" not in result.to_model()
    outcome = outcome_of(gate, result.ref)
    assert outcome["outcome"] == "ok"  # the tool did run: its side effect happened
    assert "withheld" in outcome["detail"]
    assert gate.session_state(s).labels == {"secrets", "web"}


class Unviewable:
    """A result whose JSON view raises something other than ViewError."""

    def __warded_view__(self) -> Any:
        raise RuntimeError("the view itself crashed")


@pytest.mark.requirement("G1")
def test_a_result_whose_view_raises_is_withheld_and_the_outcome_and_labels_are_recorded() -> None:
    bundle = tiny({"fetch": "{}"}, '@id("fetch")\npermit (principal, action, resource);\n')
    gate = Gate(bundle, store=MemoryStore(), key=TEST_KEY, output_scanners=[Failing()])
    gate.register("fetch", {"type": "object"}, Unviewable, labels=["web"])
    s = Session("s")

    result = gate.call(BOT, "fetch", {}, s)

    assert isinstance(result, ToolFailure)
    outcome = outcome_of(gate, result.ref)
    assert outcome["outcome"] == "ok"
    assert "withheld" in outcome["detail"]
    assert gate.session_state(s).labels == {"web"}


# -- tools that raise BaseException --------------------------------------------------


class Abort(BaseException):
    """Neither an Exception nor one of Python's own."""


def raising_gate(exc: BaseException) -> tuple[Gate, list[int]]:
    bundle = tiny(
        {"pay": "{ amount: Long }"},
        '@id("pay")\n@budget("args.amount 100/day")\npermit (principal, action, resource);\n',
    )
    gate = Gate(bundle, store=MemoryStore(), key=TEST_KEY, clock=ManualClock(START))
    ran: list[int] = []

    def pay(amount: int) -> str:
        ran.append(amount)
        raise exc

    gate.register(
        "pay",
        {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]},
        pay,
        labels=["paid"],
    )
    return gate, ran


@pytest.mark.requirement("G11")
@pytest.mark.parametrize(
    "exc",
    [SystemExit(3), GeneratorExit(), Abort("custom"), asyncio.CancelledError()],
    ids=["SystemExit", "GeneratorExit", "BaseException subclass", "CancelledError"],
)
def test_a_tool_raising_a_base_exception_is_a_tool_failure_with_its_outcome_and_labels(
    exc: BaseException,
) -> None:
    gate, ran = raising_gate(exc)
    s = Session("s")

    result = gate.call(BOT, "pay", {"amount": 60}, s)

    assert isinstance(result, ToolFailure)
    assert ran == [60]
    outcome = outcome_of(gate, result.ref)
    assert (outcome["outcome"], outcome["detail"]["error"]) == ("error", type(exc).__name__)
    assert gate.session_state(s).labels == {"paid"}
    # not atomic: the payment may have happened before it raised, so it stays counted
    assert gate.store.counter(BUDGET_KEY, START) == Decimal(60)


@pytest.mark.requirement("G11")
def test_a_keyboard_interrupt_in_a_tool_is_re_raised_once_its_outcome_and_labels_are_recorded() -> (
    None
):
    gate, ran = raising_gate(KeyboardInterrupt())
    s = Session("s")

    with pytest.raises(KeyboardInterrupt):
        gate.call(BOT, "pay", {"amount": 60}, s)

    assert ran == [60]
    outcome = only_outcome(gate)
    assert (outcome["outcome"], outcome["detail"]["error"]) == ("interrupted", "KeyboardInterrupt")
    assert gate.session_state(s).labels == {"paid"}
    assert gate.store.counter(BUDGET_KEY, START) == Decimal(60)


# -- a redactor that fails the second time ------------------------------------------------


class SecondTimeFails:
    """Redacts the audit copy, then raises when asked for the Cedar-form copy."""

    def __init__(self) -> None:
        self.uses = 0

    def redact(self, sensitive: frozenset[str], value: Any) -> Any:
        self.uses += 1
        if self.uses % 2 == 0:
            raise RuntimeError("redactor broke")
        return value


@pytest.mark.requirement("G1")
def test_a_redactor_that_raises_on_its_second_use_refuses_the_call_and_records_why() -> None:
    bundle = tiny({"pay": "{ amount: Long }"}, ALLOW)
    redactor = SecondTimeFails()
    gate = Gate(bundle, store=MemoryStore(), key=TEST_KEY, redactor=redactor)
    ran: list[int] = []
    gate.register(
        "pay", {"type": "object", "properties": {"amount": {"type": "integer"}}}, ran.append
    )

    answer = gate.call(BOT, "pay", {"amount": 5}, Session("s"))

    assert isinstance(answer, Refusal)
    assert answer.code == "unavailable"
    assert redactor.uses == 2
    assert ran == []
    (record,) = bodies(gate)
    assert (record["id"], record["decision"], record["code"]) == (answer.ref, "deny", "unavailable")
    assert "RuntimeError" in record["reasons"][0]
    assert record["args"] == {"amount": 5}


# -- awaitables through call() ------------------------------------------------------------


class AsyncCallable:
    """An object whose `__call__` is a coroutine function."""

    def __init__(self) -> None:
        self.ran: list[int] = []

    async def __call__(self, n: int) -> int:
        await asyncio.sleep(0)
        self.ran.append(n)
        return n * 2


async def _double(ran: list[int], n: int) -> int:
    await asyncio.sleep(0)
    ran.append(n)
    return n * 2


def n_gate(executor: Any) -> Gate:
    bundle = tiny({"double": "{ n: Long }"}, '@id("d")\npermit (principal, action, resource);\n')
    gate = Gate(bundle, store=MemoryStore(), key=TEST_KEY)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    gate.register("double", schema, executor)
    return gate


def executors() -> list[tuple[Any, list[int]]]:
    obj = AsyncCallable()
    ran: list[int] = []
    return [(obj, obj.ran), (functools.partial(_double, ran), ran)]


@pytest.mark.requirement("G11")
@pytest.mark.parametrize("which", [0, 1], ids=["async __call__", "partial of async def"])
def test_an_async_callable_through_call_outside_a_loop_is_awaited(which: int) -> None:
    executor, ran = executors()[which]
    gate = n_gate(executor)

    assert gate.call(BOT, "double", {"n": 21}, Session("s")) == 42

    assert ran == [21]
    outcome = only_outcome(gate)
    assert outcome["outcome"] == "ok"


@pytest.mark.requirement("G1")
@pytest.mark.parametrize("which", [0, 1], ids=["async __call__", "partial of async def"])
def test_an_async_callable_through_call_inside_a_running_loop_is_refused_before_deciding(
    which: int,
) -> None:
    executor, ran = executors()[which]
    gate = n_gate(executor)

    async def inside() -> Any:
        return gate.call(BOT, "double", {"n": 21}, Session("s"))

    answer = asyncio.run(inside())

    assert isinstance(answer, Refusal)
    assert answer.code == "unavailable"
    assert ran == []
    assert [b["kind"] for b in bodies(gate)] == ["decision"]


def coroutine_gate(hand_back: Any = _double, atomic: bool = False) -> tuple[Gate, list[int]]:
    bundle = tiny(
        {"pay": "{ amount: Long }"},
        '@id("pay")\n@budget("args.amount 100/day")\n@rate("5/minute")\n'
        "permit (principal, action, resource);\n",
    )
    gate = Gate(bundle, store=MemoryStore(), key=TEST_KEY, clock=ManualClock(START))
    ran: list[int] = []

    def pay(amount: int) -> Any:  # a sync function that hands back an awaitable
        return hand_back(ran, amount)

    schema = {"type": "object", "properties": {"amount": {"type": "integer"}}}
    gate.register("pay", schema, pay, atomic=atomic)
    return gate, ran


@pytest.mark.requirement("G10")
def test_a_sync_tool_returning_a_coroutine_inside_a_loop_never_runs_and_gives_back_its_limits() -> (
    None
):
    gate, ran = coroutine_gate()

    async def inside() -> Any:
        return gate.call(BOT, "pay", {"amount": 100}, Session("s"))

    answer = asyncio.run(inside())

    assert isinstance(answer, ToolFailure)
    assert ran == []
    outcome = outcome_of(gate, answer.ref)
    assert outcome["outcome"] == "not_run"
    assert {r["key"] for r in outcome["detail"]["released"]} == {
        BUDGET_KEY,
        f"rate|pay|{BOT}",
    }
    assert gate.store.counter(BUDGET_KEY, START) == 0
    assert gate.store.counter(f"rate|pay|{BOT}", START // 60 * 60) == 0
    # the whole budget is still there: the same payment, outside a loop, runs
    assert gate.call(BOT, "pay", {"amount": 100}, Session("s")) == 200
    assert ran == [100]


@pytest.mark.requirement("G10")
@pytest.mark.parametrize("atomic", [False, True])
def test_a_sync_tool_returning_a_scheduled_task_inside_a_loop_keeps_its_limits(
    atomic: bool,
) -> None:
    # A task (unlike a coroutine) already runs on the caller's loop: its side effect
    # happens whatever the gate does with it, so its reservations must stay.
    tasks: list[asyncio.Task[int]] = []

    def schedule(ran: list[int], amount: int) -> asyncio.Task[int]:
        tasks.append(asyncio.get_running_loop().create_task(_double(ran, amount)))
        return tasks[-1]

    gate, ran = coroutine_gate(schedule, atomic=atomic)

    async def inside() -> Any:
        answer = gate.call(BOT, "pay", {"amount": 100}, Session("s"))
        await tasks[0]
        return answer

    answer = asyncio.run(inside())

    assert ran == [100]  # it did run
    assert isinstance(answer, ToolFailure)
    assert outcome_of(gate, answer.ref)["outcome"] != "not_run"
    assert gate.store.counter(BUDGET_KEY, START) == 100
    refused = gate.call(BOT, "pay", {"amount": 100}, Session("s"))
    assert isinstance(refused, Refusal)
    assert refused.code == "limit_exceeded"
    assert ran == [100]
