"""The decision function: a pure function of (bundle, request).

`Engine.decide` evaluates a request against the slice of the bundle that can
match its principal and action, with the schema validating the request. Only
a clean Allow (decision Allow, no evaluation error) is an allow; NoDecision,
Deny and an Allow with errors (Cedar skips a policy whose condition errors,
which could be a forbid) are all denials.

A slice that compiles (see `compiler`) and passed its self-check against
cedarpy decides in Python; a request it cannot answer cleanly (anything on
which Cedar would report an error, or that it is unsure of) goes to cedarpy,
as does every slice that does not compile.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cedarpy
from cedarpy import pst

from warded.model import Decision, Mode, Principal
from warded.policy.bundle import PolicyBundle
from warded.policy.compiled import CompiledPath, Recheck
from warded.policy.compiler import CompiledSlice
from warded.policy.slicing import slice_tree

Key = tuple[str, str, str]  # (principal type, principal id, action id)


@dataclass(eq=False)
class Shared:
    """What every engine on one bundle (the same object: its version, schema and
    entities fixed) works out alike, kept once: slices, compiled slices (each
    self-checked; a recheck's disagreement disables it for all), visibility."""

    slices: dict[Key, cedarpy.PolicySet] = field(default_factory=dict)
    compiled: dict[Key, CompiledSlice | None] = field(default_factory=dict)
    visible: dict[Key, bool] = field(default_factory=dict)
    visible_with: dict[tuple[str, str, str, frozenset[str]], bool] = field(default_factory=dict)
    path: CompiledPath | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_SHARED: weakref.WeakKeyDictionary[PolicyBundle, Shared] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared(bundle: PolicyBundle) -> Shared:
    """The share of `bundle`, kept as long as the bundle is (keyed by the object: a
    bundle loaded again, even from the same files, starts a share of its own)."""
    with _SHARED_LOCK:
        found = _SHARED.get(bundle)
        if found is None:
            found = _SHARED[bundle] = Shared()
        return found


_ALLOW = cedarpy.Decision.Allow
_DENY = cedarpy.Decision.Deny
_UNSET: Any = object()
COMPILE_AFTER = 8


class Engine:
    """Decisions and visibility for one immutable bundle; caches slices per (principal, action)."""

    def __init__(
        self,
        bundle: PolicyBundle,
        mode: Mode = "enforce",
        *,
        compiled: bool = True,
        compile_after: int = COMPILE_AFTER,
        recheck: Recheck | None = None,
    ) -> None:
        """An engine for `bundle`.

        A (principal, action) slice is compiled once it has been decided
        `compile_after` times (compiling and self-checking a slice costs
        about as much as a hundred cedarpy decisions); `compiled=False`
        decides everything with cedarpy. `recheck` samples compiled
        decisions to re-decide with cedarpy. Slices, compiled slices and
        visibility are shared by every engine on the same bundle (`Shared`).
        """
        self.bundle = bundle
        self.mode: Mode = mode
        self.recheck = recheck
        self.compile_after = compile_after if compiled else -1
        self._shared = share = shared(bundle)
        self._slices, self._compiled = share.slices, share.compiled
        self._visible, self._visible_with = share.visible, share.visible_with
        self._lock = share.lock
        self._seen: dict[Key, int] = {}

    @property
    def version(self) -> str:
        return self.bundle.version

    def decide(
        self,
        principal: Principal,
        tool: str,
        resource: Mapping[str, str],
        context: Mapping[str, Any],
    ) -> Decision:
        """Decide one request. Exceptions propagate; the gate treats them as a deny."""
        action = self.bundle.action_uid(tool)
        if action is None:
            return Decision(
                False, (), ("no action declared for this tool",), self.version, self.mode
            )
        key = (principal.type, principal.id, action["id"])
        compiled = self._compiled.get(key, _UNSET) if self.compile_after >= 0 else None
        if compiled is _UNSET:
            seen = self._seen[key] = self._seen.get(key, 0) + 1
            ready = 0 <= self.compile_after < seen
            compiled = self._compile(principal, action, key) if ready else None
        if compiled is not None:
            outcome = compiled.decide(resource, context)
            if outcome is not None:
                if self.recheck is not None and self.recheck.sample():
                    self._submit(principal, action, resource, context, outcome, key)
                return Decision(outcome[0], outcome[1], (), self.version, self.mode)
        request = {
            "principal": principal.uid(),
            "action": action,
            "resource": dict(resource),
            "context": context,
        }
        policies = self._slice(principal, action)
        result = cedarpy.is_authorized(request, policies, self.bundle.entities, self.bundle.schema)
        diagnostics = result.diagnostics
        errors = tuple(diagnostics.errors)
        allowed = result.decision == _ALLOW and not errors
        # Cedar reports determining policies in no fixed order; sort them so the
        # same request always cites the same policy (G3)
        return Decision(
            allowed, tuple(sorted(diagnostics.reasons)), errors, self.version, self.mode
        )

    def visible(
        self, principal: Principal, tool: str, labels: frozenset[str] | None = None
    ) -> bool:
        """Whether some resource and context could permit `principal` to call `tool`.

        Cedar partial evaluation with the resource and the context unknown: a
        Deny means no request can be allowed, so the tool is hidden. Where
        partial evaluation cannot answer (it takes entity ids only in Cedar's
        text syntax, which cannot spell every id), a scope analysis decides
        instead: some permit's scope matches and no unconditional forbid
        does. Both only ever over-approximate what is allowed; every call is
        decided in full anyway.

        With `labels` (a session's), the tool must also survive partial
        evaluation with the session's labels known and everything else unknown:
        a tool no call could be permitted with these labels is hidden.
        """
        if not self._visible_any(principal, tool):
            return False
        if labels is None:
            return True
        key = (principal.type, principal.id, tool, labels)
        cached = self._visible_with.get(key)
        if cached is None:
            cached = self._partial(principal, tool, _labelled_context(labels))
            self._visible_with[key] = cached
        return cached

    def _visible_any(self, principal: Principal, tool: str) -> bool:
        key = (principal.type, principal.id, tool)
        cached = self._visible.get(key)
        if cached is None:
            cached = self._partial(principal, tool, None)
            self._visible[key] = cached
        return cached

    def _partial(self, principal: Principal, tool: str, context: dict[str, Any] | None) -> bool:
        """Whether partial evaluation leaves some request allowed (scope analysis if it fails).

        A known context goes without the schema: Cedar's request validation
        refuses unknown values inside a context, and leaving the schema out only
        widens what the unknowns may be, so a Deny is still a Deny for every
        request the schema admits.
        """
        action = self.bundle.action_uid(tool)
        if action is None:
            return False
        try:
            result = cedarpy.is_authorized_partial(
                {
                    "principal": _uid_text(principal.type, principal.id),
                    "action": _uid_text(action["type"], action["id"]),
                    "resource": None,
                    "context": context,
                },
                self._slice(principal, action),
                self.bundle.entities,
                self.bundle.schema if context is None else None,
            )
            if result.diagnostics.errors:
                raise ValueError("partial evaluation reported errors")
            return bool(result.decision != _DENY)
        except Exception:
            try:
                return self._scope_allows(principal, action)
            except Exception:
                return False  # nothing can tell: the tool does not exist for this principal

    def compiled(self, principal: Principal, tool: str) -> CompiledSlice | None:
        """The compiled slice deciding `principal` calling `tool`, if there is one."""
        action = self.bundle.action_uid(tool)
        if action is None or self.compile_after < 0:
            return None
        key = (principal.type, principal.id, action["id"])
        found = self._compiled.get(key, _UNSET)
        return self._compile(principal, action, key) if found is _UNSET else found

    @property
    def compiled_path(self) -> CompiledPath:
        """The bundle's compiled path (schema and entity store read on first use)."""
        share = self._shared
        if share.path is None:
            with self._lock:
                if share.path is None:
                    share.path = CompiledPath(self.bundle.schema, self.bundle.entities)
        return share.path

    def _compile(
        self, principal: Principal, action: Mapping[str, str], key: Key
    ) -> CompiledSlice | None:
        with self._lock:
            if key in self._compiled:
                return self._compiled[key]
        tree = self._tree(principal, action)
        compiled = self.compiled_path.slice(
            tree,
            self._slice(principal, action),
            (principal.type, principal.id),
            (action["type"], action["id"]),
        )
        with self._lock:
            return self._compiled.setdefault(key, compiled)

    def _submit(
        self,
        principal: Principal,
        action: Mapping[str, str],
        resource: Mapping[str, str],
        context: Mapping[str, Any],
        outcome: tuple[bool, tuple[str, ...]],
        key: Key,
    ) -> None:
        assert self.recheck is not None
        request = {
            "principal": principal.uid(),
            "action": dict(action),
            "resource": dict(resource),
            "context": context,
        }

        def disable() -> None:
            with self._lock:
                self._compiled[key] = None

        self.recheck.submit(
            request,
            outcome,
            self._slice(principal, action),
            self.compiled_path,
            disable,
            self.version,
        )

    def _scope_allows(self, principal: Principal, action: Mapping[str, str]) -> bool:
        nodes = self._tree(principal, action).static_policies.values()
        banned = any(
            n.effect == "forbid" and not n.clauses and isinstance(n.resource, pst.ScopeAny)
            for n in nodes
        )
        return not banned and any(n.effect == "permit" for n in nodes)

    def _slice(self, principal: Principal, action: Mapping[str, str]) -> cedarpy.PolicySet:
        key = (principal.type, principal.id, action["id"])
        policies = self._slices.get(key)
        if policies is None:
            with self._lock:
                policies = self._slices.get(key)
                if policies is None:
                    policies = cedarpy.PolicySet.from_pst(self._tree(principal, action))
                    self._slices[key] = policies
        return policies

    def _tree(self, principal: Principal, action: Mapping[str, str]) -> pst.PolicySet:
        """The policies whose scope can match this (principal, action)."""
        return slice_tree(
            self.bundle.tree,
            (principal.type, principal.id),
            (action["type"], action["id"]),
            self.bundle.ancestors,
        )


def _unknown(name: str) -> dict[str, Any]:
    return {"__extn": {"fn": "unknown", "arg": name}}


def _labelled_context(labels: frozenset[str]) -> dict[str, Any]:
    """A context in which only the session's labels are known.

    Every attribute a policy may read is present (as an unknown where it is not
    known): an attribute missing from a partial context would make a permit
    that reads it err, be skipped, and hide a tool that a full request could be
    allowed.
    """
    return {
        "args": _unknown("args"),
        "session": {
            "id": _unknown("session.id"),
            "labels": sorted(labels),
            "calls": _unknown("session.calls"),
        },
        "now": _unknown("now"),
        "scan": _unknown("scan"),
        "provenance": _unknown("provenance"),
    }


def _uid_text(entity_type: str, entity_id: str) -> str:
    """A Cedar entity reference in source form, for the APIs that take only text."""
    escaped = json.dumps(entity_id, ensure_ascii=False)[1:-1]
    return f'{entity_type}::"{escaped}"'
