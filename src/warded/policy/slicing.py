"""Slicing: the policies whose scope can match a (principal, action) pair.

A Cedar policy whose principal or action scope cannot match a request is not
satisfied by it and so cannot affect its decision. Evaluating only the
policies whose scope can match gives the same decision, faster. Anything this
module cannot decide (e.g. a slot) is kept: keeping a policy is always sound.
"""

from __future__ import annotations

from collections.abc import Mapping

from cedarpy import pst

Uid = tuple[str, str]


def _uid(e: object) -> Uid | None:
    if isinstance(e, pst.EntityUid):
        return (str(e.type), e.id)
    return None


def principal_may_match(scope: object, principal: Uid, ancestors: frozenset[Uid]) -> bool:
    if isinstance(scope, pst.ScopeAny):
        return True
    if isinstance(scope, pst.ScopeEq):
        uid = _uid(scope.entity)
        return uid is None or uid == principal
    if isinstance(scope, pst.ScopeIn):
        uid = _uid(scope.entity)
        return uid is None or uid == principal or uid in ancestors
    if isinstance(scope, pst.ScopeIs):
        return str(scope.entity_type) == principal[0]
    if isinstance(scope, pst.ScopeIsIn):
        uid = _uid(scope.entity)
        in_ok = uid is None or uid == principal or uid in ancestors
        return str(scope.entity_type) == principal[0] and in_ok
    return True


def action_may_match(scope: object, action: Uid, ancestors: frozenset[Uid]) -> bool:
    if isinstance(scope, pst.ActionEq):
        return _uid(scope.entity) == action
    if isinstance(scope, pst.ActionIn):
        return any((u := _uid(e)) is None or u == action or u in ancestors for e in scope.entities)
    return True


def slice_tree(
    tree: pst.PolicySet,
    principal: Uid,
    action: Uid,
    ancestors: Mapping[Uid, frozenset[Uid]],
) -> pst.PolicySet:
    """The sub-policy-set of `tree` that can affect requests by `principal` for `action`."""
    p_anc = ancestors.get(principal, frozenset())
    a_anc = ancestors.get(action, frozenset())
    kept = {
        pid: node
        for pid, node in tree.static_policies.items()
        if action_may_match(node.action, action, a_anc)
        and principal_may_match(node.principal, principal, p_anc)
    }
    return pst.PolicySet(templates={}, static_policies=kept, template_links=())
