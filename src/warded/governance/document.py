"""The governance document: each agent's boundary, derived from the bundle itself.

`document(bundle)` builds, from the parsed policies (never their source text)
and the entities, what a compliance reader needs for each agent: every tool
it may use and under which conditions, what is forbidden and when, which
calls need approval and who can give it, and the rate and budget limits — a
limit that several tools draw on is listed once, with each of them. The
result is plain data (`json.dumps`-able), rendered by `warded.governance.render`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import cedarpy
from cedarpy import pst

from warded.governance.conditions import cedar, conjuncts, entity, plain
from warded.model import Principal
from warded.policy import annotations as ann
from warded.policy.bundle import PolicyBundle, PolicyInfo
from warded.policy.engine import Engine
from warded.policy.slicing import slice_tree

_SCOPE = {
    "ScopeEq": "is {}",
    "ScopeIn": "is in {}",
    "ScopeIs": "is a {}",
    "ScopeIsIn": "is a {} in {}",
}


def agents(bundle: PolicyBundle) -> list[Principal]:
    """Every entity of a type that some tool action takes as its principal."""
    types = sorted({t for t, _ in bundle.ancestors})
    probes = "\n".join(f"permit (principal is {t}, action, resource);" for t in types)
    failing = {
        int(e.policy_id[6:]) for e in cedarpy.validate_policies(probes, bundle.schema).errors
    }
    principal_types = {t for k, t in enumerate(types) if k not in failing}
    return sorted(
        (Principal(t, i) for t, i in bundle.ancestors if t in principal_types),
        key=lambda p: (p.type, p.id),
    )


def document(
    bundle: PolicyBundle, principals: list[Principal] | None = None, now: float | None = None
) -> dict[str, Any]:
    """The governance document of `bundle` for `principals` (default: every agent)."""
    engine = Engine(bundle)
    when = time.time() if now is None else now
    who = agents(bundle) if principals is None else principals
    return {
        "bundle_version": bundle.version,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "policy_files": [name for name, _ in bundle.files.policies],
        "agents": [_agent(bundle, engine, p) for p in who],
    }


def _agent(bundle: PolicyBundle, engine: Engine, principal: Principal) -> dict[str, Any]:
    uid = (principal.type, principal.id)
    tools: list[dict[str, Any]] = []
    unavailable: list[dict[str, Any]] = []
    limits: dict[str, dict[str, Any]] = {}
    approvals: dict[str, dict[str, Any]] = {}
    for name in sorted(bundle.actions):
        tree = slice_tree(bundle.tree, uid, bundle.actions[name], bundle.ancestors)
        infos = _ordered(bundle, tree)
        if not engine.visible(principal, name):
            unavailable.append(_unavailable(name, infos, tree))
            continue
        permits = [_policy(i, tree.static_policies[i.id]) for i in infos if i.effect == "permit"]
        forbids = [_policy(i, tree.static_policies[i.id]) for i in infos if i.effect == "forbid"]
        tools.append({"tool": name, "allowed_by": permits, "forbidden_by": forbids})
        for info in (i for i in infos if i.effect == "permit"):
            _limits(limits, info, name)
            if info.approval:
                entry = approvals.setdefault(
                    info.approval,
                    {
                        "group": info.approval,
                        "approvers": approvers(bundle, info.approval),
                        "policies": {},
                    },
                )
                entry["policies"].setdefault(info.id, []).append(name)
    return {
        "principal": str(principal),
        "member_of": sorted(
            entity(pst.EntityUid(pst.EntityType(t), i))
            for t, i in bundle.ancestors.get(uid, frozenset())
        ),
        "known": uid in bundle.ancestors,
        "tools": tools,
        "unavailable": unavailable,
        "approvals": [
            {**a, "policies": [{"policy": p, "tools": t} for p, t in a["policies"].items()]}
            for a in approvals.values()
        ],
        "limits": list(limits.values()),
    }


def approvers(bundle: PolicyBundle, group: str) -> list[str]:
    """The ids of the `Approver` entities in approver group `group`."""
    target = (ann.APPROVER_GROUP_TYPE, group)
    return sorted(
        i
        for (t, i), above in bundle.ancestors.items()
        if t == ann.APPROVER_TYPE and target in above
    )


def _ordered(bundle: PolicyBundle, tree: pst.PolicySet) -> list[PolicyInfo]:
    infos = [bundle.policies[p] for p in tree.static_policies]
    return sorted(infos, key=lambda i: (i.file, i.line or 0, i.id))


def _unavailable(name: str, infos: list[PolicyInfo], tree: pst.PolicySet) -> dict[str, Any]:
    banned = [
        _policy(i, tree.static_policies[i.id])
        for i in infos
        if i.effect == "forbid" and not tree.static_policies[i.id].clauses
    ]
    permits = [i for i in infos if i.effect == "permit"]
    if banned:
        why = "forbidden outright"
    elif not permits:
        why = "no policy permits it"
    else:
        why = "no permit can apply to this agent whatever the call"
    return {"tool": name, "why": why, "forbidden_by": banned}


def _policy(info: PolicyInfo, node: pst.Template) -> dict[str, Any]:
    conditions = []
    for clause in node.clauses:
        kind = "when" if isinstance(clause, pst.When) else "unless"
        # `when {a && b}` is two conditions; `unless {a && b}` is one (except when both)
        for part in conjuncts(clause.expr) if kind == "when" else (clause.expr,):
            conditions.append({"kind": kind, "text": plain(part), "cedar": cedar(part)})
    return {
        "id": info.id,
        "effect": info.effect,
        "description": info.description,
        "owner": info.owner,
        "where": f"{info.file}:{info.line}" if info.line is not None else info.file,
        "principal": _scope(node.principal, "the agent"),
        "resource": _scope(node.resource, "the resource"),
        "conditions": conditions,
        "obligations": _obligations(info),
    }


def _scope(scope: Any, subject: str) -> str | None:
    form = _SCOPE.get(type(scope).__name__)
    if form is None:
        return None
    args = []
    if hasattr(scope, "entity_type"):
        args.append(str(scope.entity_type))
    if hasattr(scope, "entity"):
        args.append(f"`{entity(scope.entity)}`" if isinstance(scope.entity, pst.EntityUid) else "?")
    return f"{subject} {form.format(*args)}"


def _obligations(info: PolicyInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if info.approval:
        out["approval"] = info.approval
    if info.rate:
        out["rate"] = _limit_id("rate", info)
    if info.budget:
        out["budget"] = _limit_id("budget", info)
    if info.redact:
        out["redact"] = list(info.redact)
    return out


def _limit_id(kind: str, info: PolicyInfo) -> str:
    return f"{kind} {info.id}"


def _limits(limits: dict[str, dict[str, Any]], info: PolicyInfo, tool: str) -> None:
    if info.rate is not None:
        entry = limits.setdefault(
            _limit_id("rate", info),
            {
                "id": _limit_id("rate", info),
                "kind": "rate",
                "policy": info.id,
                "limit": str(info.rate),
                "text": _rate_text(info.rate),
                "tools": [],
            },
        )
        entry["tools"].append(tool)
    if info.budget is not None:
        entry = limits.setdefault(
            _limit_id("budget", info),
            {
                "id": _limit_id("budget", info),
                "kind": "budget",
                "policy": info.id,
                "limit": str(info.budget),
                "text": _budget_text(info.budget),
                "tools": [],
            },
        )
        entry["tools"].append(tool)


def _period(seconds: int) -> str:
    return next(k for k, v in ann.PERIODS.items() if v == seconds)


def _rate_text(rate: ann.Rate) -> str:
    per = "for each tool separately" if rate.scope == "principal_tool" else "over all its tools"
    return f"at most {rate.limit} calls per {_period(rate.period)} (UTC windows), {per}"


def _budget_text(budget: ann.Budget) -> str:
    arg = ".".join(budget.path[1:])
    return (
        f"argument {arg} adds up to at most {budget.limit} per {_period(budget.period)} "
        "(UTC windows), over all calls of the tools listed"
    )


def as_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)
