"""OpenTelemetry spans and metrics for every decision, read from the audit records as they commit.

    store = Telemetry().observe(SQLiteStore("audit.db"))
    gate = Gate.from_directory("policies/", store=store)

Telemetry follows the audit log, not the call path: the store reports each
record once its transaction has committed, so a span exists exactly for what
was audited, and the gate needs no hook. One span per call, named
`execute_tool {tool}` after the GenAI semantic conventions
(`gen_ai.operation.name = execute_tool`, `gen_ai.tool.name`,
`gen_ai.tool.call.id`), from the decision to the outcome, with the guardrail's
verdict as `warded.*` attributes: decision, refusal code, determining policy
ids, bundle version, the audit record id and the keyed digest of the
arguments. Argument values are never attributes (G20); neither is the name
a caller asked for when no such tool exists.

Metrics: `warded.decisions` (counter by decision, code and tool),
`warded.decision.duration` (histogram, seconds), `gen_ai.execute_tool.duration`
(histogram of tool run time), and with `watch(desk)` the gauges
`warded.approvals.pending` and `warded.approvals.pending.age` (the oldest, in
seconds).

Without the `otel` extra (`pip install 'warded[otel]'`) `observe` returns the
store unchanged and `watch` does nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from warded.audit.record import AuditEntry, AuditRecord
from warded.clock import Clock, SystemClock
from warded.obligations.desk import ApprovalDesk
from warded.store import Store, Tx

try:
    from opentelemetry import metrics, trace
except ImportError:  # pragma: no cover - depends on the environment
    metrics = trace = None  # type: ignore[assignment]

log = logging.getLogger("warded")
SCOPE = "warded"
OPEN_CALLS = 10_000  # allowed calls awaiting their outcome record; the oldest are dropped
Sink = Callable[[Sequence[AuditRecord]], None]


def enabled() -> bool:
    """Whether the OpenTelemetry API is installed."""
    return trace is not None


class Telemetry:
    """Spans and metrics from one or more stores' audit records."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self._open: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        if trace is None or metrics is None:
            return
        self._tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        self._meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        self._decisions = self._meter.create_counter(
            "warded.decisions", unit="{decision}", description="Decisions by outcome and code"
        )
        self._latency = self._meter.create_histogram(
            "warded.decision.duration", unit="s", description="Time from call to decision"
        )
        self._run_time = self._meter.create_histogram(
            "gen_ai.execute_tool.duration", unit="s", description="Time the tool ran"
        )

    def observe(self, store: Store) -> Store:
        """`store`, reporting every committed record here (itself, without the extra)."""
        if trace is None:
            return store
        observed: Store = _ObservedStore(store, self._safe)
        return observed

    def _safe(self, records: Sequence[AuditRecord]) -> None:
        # the records are committed: a telemetry failure must not look like a store failure
        try:
            self.record(records)
        except Exception as exc:
            log.warning("telemetry dropped %d records: %s", len(records), exc)

    def watch(self, desk: ApprovalDesk, clock: Clock | None = None) -> None:
        """Gauges of the desk's pending approvals: how many, and the oldest one's age."""
        if metrics is None:
            return
        now = (clock or SystemClock()).now

        def pending(_: Any) -> Iterator[Any]:
            waiting = desk.approvals("pending")
            yield metrics.Observation(len(waiting))

        def age(_: Any) -> Iterator[Any]:
            waiting = desk.approvals("pending")
            oldest = min((a.created for a in waiting), default=None)
            yield metrics.Observation(0.0 if oldest is None else max(0.0, now() - oldest))

        self._meter.create_observable_gauge(
            "warded.approvals.pending", [pending], unit="{approval}", description="Waiting"
        )
        self._meter.create_observable_gauge(
            "warded.approvals.pending.age", [age], unit="s", description="Oldest waiting"
        )

    def record(self, records: Sequence[AuditRecord]) -> None:
        """Spans and metrics for records that have just committed."""
        for record in records:
            body = record.body
            if body["mode"] != "enforce":
                continue
            if body["kind"] == "decision":
                self._decided(body)
            elif body["kind"] == "outcome":
                with self._lock:
                    decision = self._open.pop(body["call"], None)
                if decision is not None:
                    self._span(decision, body)

    def _decided(self, body: dict[str, Any]) -> None:
        code = body["code"] or "none"
        tool = _tool(body)
        self._decisions.add(
            1, {"warded.decision": body["decision"], "warded.code": code, "gen_ai.tool.name": tool}
        )
        if body["latency_us"] is not None:
            self._latency.record(body["latency_us"] / 1e6, {"warded.decision": body["decision"]})
        if body["decision"] == "allow":
            with self._lock:
                self._open[body["call"]] = body
                while len(self._open) > OPEN_CALLS:
                    self._open.popitem(last=False)
        else:
            self._span(body, None)

    def _span(self, decision: dict[str, Any], outcome: dict[str, Any] | None) -> None:
        tool = _tool(decision)
        end_us = (outcome or decision)["time_us"]
        start_us = decision["time_us"] - (decision["latency_us"] or 0)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "gen_ai.tool.call.id": decision["call"],
            "gen_ai.tool.type": "function",
            "warded.principal": decision["principal"] or "",
            "warded.decision": decision["decision"],
            "warded.policy.ids": list(decision["policies"]),
            "warded.bundle.version": decision["bundle_version"] or "",
            "warded.audit.record": decision["id"],
        }
        if decision["code"]:
            attributes["warded.refusal.code"] = decision["code"]
        if decision["args_digest"]:
            attributes["warded.args.digest"] = decision["args_digest"]
        span = self._tracer.start_span(
            f"execute_tool {tool}",
            kind=trace.SpanKind.INTERNAL,
            start_time=start_us * 1000,
            attributes=attributes,
        )
        if outcome is not None:
            span.set_attribute("warded.outcome", outcome["outcome"] or "")
            if outcome["latency_us"] is not None:
                self._run_time.record(outcome["latency_us"] / 1e6, {"gen_ai.tool.name": tool})
            if outcome["outcome"] == "error":
                error = outcome["detail"].get("error") or "error"
                span.set_attribute("error.type", str(error))
                span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end(end_time=end_us * 1000)


def _tool(body: dict[str, Any]) -> str:
    # a name asked for that does not exist is whatever the caller typed: never an attribute
    return "(unknown)" if body["code"] == "unknown_tool" else str(body["tool"] or "")


class _ObservedStore:
    """A store that hands each committed transaction's records to a sink."""

    def __init__(self, inner: Store, sink: Sink) -> None:
        self._inner = inner
        self._sink = sink

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        return _observed(self._inner.transaction(durable=durable), self._sink)

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        records = self._inner.append(entries)
        self._sink(records)
        return records

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def _observed(transaction: AbstractContextManager[Tx], sink: Sink) -> Iterator[Tx]:
    sealed: list[AuditRecord] = []
    with transaction as tx:
        yield _ObservedTx(tx, sealed)
    sink(sealed)  # only after the commit: a rolled-back transaction reports nothing


class _ObservedTx:
    def __init__(self, inner: Tx, sealed: list[AuditRecord]) -> None:
        self._inner = inner
        self._sealed = sealed

    def append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        records = self._inner.append(entries)
        self._sealed.extend(records)
        return records

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
