"""The decision function: a pure function of (bundle, request).

`Engine.decide` evaluates a request against the slice of the bundle that can
match its principal and action, with the schema validating the request. Only
a clean Allow (decision Allow, no evaluation error) is an allow; NoDecision,
Deny and an Allow with errors (Cedar skips a policy whose condition errors,
which could be a forbid) are all denials.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import cedarpy
from cedarpy import pst

from warded.model import Decision, Mode, Principal
from warded.policy.bundle import PolicyBundle
from warded.policy.slicing import slice_tree

_ALLOW = cedarpy.Decision.Allow
_DENY = cedarpy.Decision.Deny


class Engine:
    """Decisions and visibility for one immutable bundle; caches slices per (principal, action)."""

    def __init__(self, bundle: PolicyBundle, mode: Mode = "enforce") -> None:
        self.bundle = bundle
        self.mode: Mode = mode
        self._slices: dict[tuple[str, str, str], cedarpy.PolicySet] = {}
        self._visible: dict[tuple[str, str, str], bool] = {}
        self._lock = threading.Lock()

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

    def visible(self, principal: Principal, tool: str) -> bool:
        """Whether some resource and context could permit `principal` to call `tool`.

        Cedar partial evaluation with the resource and the context unknown: a
        Deny means no request can be allowed, so the tool is hidden. Where
        partial evaluation cannot answer (it takes entity ids only in Cedar's
        text syntax, which cannot spell every id), a scope analysis decides
        instead: some permit's scope matches and no unconditional forbid
        does. Both only ever over-approximate what is allowed; every call is
        decided in full anyway.
        """
        key = (principal.type, principal.id, tool)
        cached = self._visible.get(key)
        if cached is not None:
            return cached
        action = self.bundle.action_uid(tool)
        shown = False
        if action is not None:
            try:
                result = cedarpy.is_authorized_partial(
                    {
                        "principal": _uid_text(principal.type, principal.id),
                        "action": _uid_text(action["type"], action["id"]),
                        "resource": None,
                        "context": None,
                    },
                    self._slice(principal, action),
                    self.bundle.entities,
                    self.bundle.schema,
                )
                if result.diagnostics.errors:
                    raise ValueError("partial evaluation reported errors")
                shown = result.decision != _DENY
            except (ValueError, TypeError):
                shown = self._scope_allows(principal, action)
        self._visible[key] = shown
        return shown

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


def _uid_text(entity_type: str, entity_id: str) -> str:
    """A Cedar entity reference in source form, for the APIs that take only text."""
    escaped = json.dumps(entity_id, ensure_ascii=False)[1:-1]
    return f'{entity_type}::"{escaped}"'
