"""Running a call: the tool's body (an awaitable run to completion outside an event
loop), the thread pool decisions run on when they may time out or the caller is
async, and what a decision nobody waits for any more leaves in the log."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from warded.audit.record import AuditEntry, new_id
from warded.authorize import masked_name
from warded.calls import Authorized, NotRun, Unawaited
from warded.model import Principal, Refusal, Session
from warded.outcome import finish
from warded.records import append
from warded.request import printable, utf8

if TYPE_CHECKING:
    from warded.gate import Gate

DECISION_THREADS = 32


def execute(gate: Gate, principal: Principal, authorized: Authorized, session: Session) -> Any:
    """Run an authorized call and record its outcome; never raises but KeyboardInterrupt."""
    started = time.perf_counter()
    try:
        result = awaited(authorized.tool.executor(**authorized.kwargs))
    except BaseException as exc:
        answer = finish(gate, principal, authorized, session, started, exc)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return answer
    return finish(gate, principal, authorized, session, started, None, result)


def timed_out(
    gate: Gate,
    future: concurrent.futures.Future[Authorized | Refusal],
    principal: Principal,
    name: str,
    session: Session,
) -> Refusal:
    """Refuse now; if the decision completes later, record that the call never ran."""
    ref = new_id()
    abandon(gate, future, principal, session, {"reason": "decision timed out", "timeout_ref": ref})
    entry = AuditEntry(
        kind="decision",
        id=ref,
        call=new_id(),
        time=time.time(),
        principal=utf8(str(principal)),
        session=printable(getattr(session, "id", None)),
        decision="deny",
        code="unavailable",
        reasons=(f"decision timed out after {gate.decision_timeout}s",),
        bundle_version=gate._engine.version,
    )

    def record() -> None:  # never wait on a hung store, nor on the scanners of the name
        append(gate.store, [replace(entry, tool=masked_name(gate, gate._engine, name))])

    executor(gate).submit(record)
    return Refusal("unavailable", ref=ref)


def abandon(
    gate: Gate,
    future: concurrent.futures.Future[Authorized | Refusal],
    principal: Principal,
    session: Session,
    detail: Mapping[str, Any],
) -> None:
    """When a decision nobody waits for any more completes as authorized, record that
    the call never ran and give back what it took."""

    def late(f: concurrent.futures.Future[Authorized | Refusal]) -> None:
        done = None if f.cancelled() or f.exception() else f.result()
        if isinstance(done, Authorized):
            started = time.perf_counter()
            finish(gate, principal, done, session, started, None, outcome="not_run", detail=detail)

    future.add_done_callback(late)


def executor(gate: Gate) -> concurrent.futures.ThreadPoolExecutor:
    if gate._pool is None:
        with gate._reload_lock:
            if gate._pool is None:
                gate._pool = concurrent.futures.ThreadPoolExecutor(
                    DECISION_THREADS, thread_name_prefix="warded-decide"
                )
    return gate._pool


def awaited(result: Any) -> Any:
    """A tool's result; an awaitable is run to completion (there is no running loop:
    `call()` refuses async tools inside one before deciding)."""
    if not inspect.isawaitable(result):
        return result
    if loop_running():
        if inspect.iscoroutine(result):
            result.close()  # never started: nothing happened
            raise NotRun("an awaitable result inside a running event loop")
        raise Unawaited("an awaitable result inside a running event loop")

    async def wait() -> Any:
        return await result

    return asyncio.run(wait())


def loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
