"""The load-time self-check: a compiled slice against cedarpy, on requests made from its policies.

Before a compiled slice decides anything, it decides requests built from the
slice's own constants and boundaries: every Long constant and its
neighbours (and the ends of the 64-bit range), every string constant and
every `like` pattern filled in, every decimal constant and its neighbours,
every entity the policies name or the store holds of a declared type (so
each is in and out of each group) and one that does not exist, each
optional attribute present and absent, sets empty and not. A request the
compiled slice answers must get the same answer from cedarpy (decision and
determining policies, and no errors); one disagreement and the slice is not
used.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import cedarpy
from cedarpy import pst

from warded.policy import runtime as rt
from warded.policy import schema as s
from warded.policy.compiler import CompiledSlice

Uid = tuple[str, str]
MAX_REQUESTS = 96
_ABSENT = "\u2400warded-absent"
_ALLOW = cedarpy.Decision.Allow
_DENY = cedarpy.Decision.Deny


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A request on which a compiled slice and cedarpy decided differently."""

    principal: Uid
    action: Uid
    request: Mapping[str, Any]
    compiled: tuple[bool, tuple[str, ...]]
    cedar: tuple[str, tuple[str, ...], tuple[str, ...]]
    bundle_version: str = ""

    def __str__(self) -> str:
        return (
            f"compiled slice for {self.principal} / {self.action} decided {self.compiled}, "
            f"cedarpy {self.cedar}, on {dict(self.request)!r}"
        )

    def summary(self) -> str:
        """What disagreed, without the request's context (a live call's arguments) or
        Cedar's error messages (which may quote it)."""
        decision, policies, errors = self.cedar
        return (
            f"compiled slice for {self.principal} / {self.action} decided {self.compiled}, "
            f"cedarpy {(decision, policies)} with {len(errors)} error(s), "
            f"on resource {self.request.get('resource')!r}"
        )


def cedar_outcome(
    request: Mapping[str, Any],
    policies: cedarpy.PolicySet,
    entities: cedarpy.Entities,
    schema: cedarpy.Schema,
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """cedarpy's (decision, sorted determining policies, errors); an exception is an error too."""
    try:
        result = cedarpy.is_authorized(dict(request), policies, entities, schema)
    except Exception as exc:
        return "raised", (), (f"{type(exc).__name__}: {exc}",)
    d = result.diagnostics
    return result.decision.value, tuple(sorted(d.reasons)), tuple(d.errors)


def cedar_outcomes(
    requests: list[dict[str, Any]],
    policies: cedarpy.PolicySet,
    entities: cedarpy.Entities,
    schema: cedarpy.Schema,
) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """`cedar_outcome` of each request, in one cedarpy batch (one by one if the batch raises)."""
    try:
        results = cedarpy.is_authorized_batch(requests, policies, entities, schema)
    except Exception:
        return [cedar_outcome(r, policies, entities, schema) for r in requests]
    return [
        (r.decision.value, tuple(sorted(r.diagnostics.reasons)), tuple(r.diagnostics.errors))
        for r in results
    ]


def agrees(
    compiled: tuple[bool, tuple[str, ...]], cedar: tuple[str, tuple[str, ...], tuple[str, ...]]
) -> bool:
    decision, reasons, errors = cedar
    if errors or decision not in (_ALLOW.value, _DENY.value):
        return False
    return compiled == (decision == _ALLOW.value, reasons)


class _Constants:
    def __init__(self) -> None:
        self.longs: set[int] = {0, 1, -1, rt.LONG_MAX, rt.LONG_MIN}
        self.strings: set[str] = {"", "x"}
        self.decimals: set[int] = {0}
        self.entities: set[Uid] = set()

    def collect(self, node: object) -> None:
        stack = [node]
        while stack:
            v = stack.pop()
            if isinstance(v, pst.LongLit):
                self.longs.update((v.value - 1, v.value, v.value + 1))
            elif isinstance(v, pst.StringLit):
                self.strings.add(v.value)
                try:
                    n = rt.parse_decimal(v.value).n
                    self.decimals.update((n - 1, n, n + 1))
                except rt.Fallback:
                    pass
            elif isinstance(v, pst.EntityUid):
                self.entities.add((str(v.type), v.id))
            elif isinstance(v, pst.Like):
                self.strings.update(_fillings(v.pattern))
                stack.append(v.base)
            elif isinstance(v, Mapping):
                stack.extend(v.values())
            elif isinstance(v, tuple):
                stack.extend(v)
            elif is_dataclass(v) and not isinstance(v, type):
                stack.extend(getattr(v, f.name) for f in fields(v))


def _fillings(pattern: tuple[object, ...]) -> set[str]:
    out = set()
    for fill in ("", "x", "*"):
        out.add("".join(e.value if isinstance(e, pst.Char) else fill for e in pattern))
    return out


def _decimal_text(n: int) -> str:
    sign = "-" if n < 0 else ""
    whole, frac = divmod(abs(n), 10_000)
    return f"{sign}{whole}.{frac:04d}"


class _Values:
    """Candidate JSON values for each schema type, from the slice's constants and the store."""

    def __init__(self, consts: _Constants, schema: s.Schema, store: rt.Store) -> None:
        self.consts = consts
        self.schema = schema
        self.by_type: dict[str, list[str]] = {}
        for t, i in sorted(set(store.attrs) | consts.entities):
            self.by_type.setdefault(t, []).append(i)

    def entity_ids(self, name: str) -> list[str]:
        decl = self.schema.entities.get(name)
        ids = list(self.by_type.get(name, []))
        if decl is not None and decl.enum is not None:
            ids += sorted(decl.enum)
        return [*dict.fromkeys(ids), _ABSENT]

    def candidates(self, t: s.Type) -> list[Any]:
        if isinstance(t, s.Prim):
            if t.name == "Long":
                return sorted(n for n in self.consts.longs if rt.LONG_MIN <= n <= rt.LONG_MAX)
            if t.name == "Bool":
                return [False, True]
            if t.name == "String":
                return sorted(self.consts.strings)
            if t.name == "decimal":
                ok = (n for n in self.consts.decimals if rt.LONG_MIN <= n <= rt.LONG_MAX)
                return [_decimal_text(n) for n in sorted(ok)]
            return []
        if isinstance(t, s.EntityRef):
            return [{"type": t.name, "id": i} for i in self.entity_ids(t.name)]
        if isinstance(t, s.SetOf):
            items = self.candidates(t.element)
            return [[], items[:1], items[-1:], items[:3]] if items else [[]]
        return [self.record(t, k) for k in range(3)]

    def record(self, t: s.Record, k: int) -> dict[str, Any]:
        out = {}
        for name, (ft, required) in t.attrs.items():
            options = self.candidates(ft)
            if not options:
                continue
            if required or k != 1:
                out[name] = options[k % len(options)]
        return out


def _leaves(
    value: Any, t: s.Type, path: tuple[Any, ...]
) -> Iterator[tuple[tuple[Any, ...], s.Type]]:
    yield path, t
    if isinstance(t, s.Record) and isinstance(value, dict):
        for name, (ft, _) in t.attrs.items():
            yield from _leaves(value.get(name), ft, (*path, name))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = dict(value) if isinstance(value, dict) else {}
    if new is _DROP and len(path) == 1:
        out.pop(path[0], None)
        return out
    out[path[0]] = _replace(out.get(path[0]), path[1:], new)
    return out


_DROP = object()


def requests(
    policies: pst.PolicySet,
    principal: Uid,
    action: Uid,
    schema: s.Schema,
    store: rt.Store,
    limit: int = MAX_REQUESTS,
) -> list[dict[str, Any]]:
    """Requests from the slice's constants and boundaries, at most `limit`, deterministic."""
    consts = _Constants()
    consts.collect(policies.static_policies)
    values = _Values(consts, schema, store)
    declared = schema.actions[action]
    resources = [
        {"type": t, "id": i} for t in sorted(declared.resources) for i in values.entity_ids(t)
    ]
    if not resources:
        return []
    base = values.record(declared.context, 0)
    contexts = [base, values.record(declared.context, 1), values.record(declared.context, 2)]
    for path, t in list(_leaves(base, declared.context, ())):
        if not path:
            continue
        contexts += [_replace(base, path, v) for v in values.candidates(t)]
        contexts.append(_replace(base, path, _DROP))
    rng = random.Random(f"{principal}{action}")
    uid = {"type": principal[0], "id": principal[1]}
    act = {"type": action[0], "id": action[1]}
    out = [{"principal": uid, "action": act, "resource": r, "context": base} for r in resources]
    out += [
        {"principal": uid, "action": act, "resource": resources[0], "context": c} for c in contexts
    ]
    if len(out) > limit:
        out = out[: limit // 2] + rng.sample(out[limit // 2 :], limit - limit // 2)
    while len(out) < limit and len(contexts) > 1:
        out.append(
            {
                "principal": uid,
                "action": act,
                "resource": rng.choice(resources),
                "context": _mix(rng, contexts),
            }
        )
    return out


def _mix(rng: random.Random, contexts: list[dict[str, Any]]) -> dict[str, Any]:
    a, b = rng.sample(contexts, 2)
    return {k: (a if rng.random() < 0.5 else b).get(k, v) for k, v in {**a, **b}.items()}


def check(
    compiled: CompiledSlice,
    tree: pst.PolicySet,
    policies: cedarpy.PolicySet,
    principal: Uid,
    action: Uid,
    schema: s.Schema,
    store: rt.Store,
    entities: cedarpy.Entities,
    cedar_schema: cedarpy.Schema,
) -> Disagreement | None:
    """The first request on which `compiled` and cedarpy disagree, or None."""
    answered = []
    for request in requests(tree, principal, action, schema, store):
        outcome = compiled.decide(request["resource"], request["context"])
        if outcome is not None:
            answered.append((request, outcome))
    for (request, outcome), cedar in zip(
        answered,
        cedar_outcomes([r for r, _ in answered], policies, entities, cedar_schema),
        strict=True,
    ):
        if not agrees(outcome, cedar):
            return Disagreement(principal, action, request, outcome, cedar)
    return None
