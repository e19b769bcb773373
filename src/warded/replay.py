"""Replay recorded decisions against policy bundles.

Every decision record that reached the policy engine holds its request (the
resource and the Cedar context, with sensitive arguments redacted). Replaying
it against the bundle of the recorded version must reproduce the policy's
verdict — allow or deny, whether an approval is required, and the determining
policies (G3); replaying it against a candidate bundle shows what that bundle
would have decided on real traffic before it goes live. What depends on store
state rather than policy (an approval already granted, a limit reached, a
reused call id) is not part of the verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from warded.audit.record import AuditRecord
from warded.model import Principal
from warded.obligations.plan import approval_of
from warded.policy.bundle import PolicyBundle
from warded.policy.engine import Engine

Outcome = tuple[str, bool, tuple[str, ...]]  # verdict, approval required, policies


@dataclass(frozen=True, slots=True)
class Replayed:
    """One decision record and what the bundle decides for it now."""

    seq: int
    call: str
    status: Literal["same", "different", "skipped"]
    recorded: Outcome
    replayed: Outcome | None = None
    reason: str | None = None


def replay(
    records: Iterable[AuditRecord], bundles: PolicyBundle | Mapping[str, PolicyBundle]
) -> list[Replayed]:
    """Re-decide every replayable decision record.

    With one bundle, every record is replayed against it (a what-if). With a
    mapping of versions to bundles, each record is replayed against the
    version it names; records of other versions are skipped.
    """
    engines: dict[str, Engine] = {}
    out: list[Replayed] = []
    for record in records:
        body = record.body
        if body.get("kind") != "decision" or not body.get("request"):
            continue
        recorded = _recorded(body)
        if isinstance(bundles, PolicyBundle):
            bundle: PolicyBundle | None = bundles
        else:
            bundle = bundles.get(body["bundle_version"])
        if bundle is None:
            out.append(
                Replayed(body["seq"], body["call"], "skipped", recorded, reason="bundle not given")
            )
            continue
        engine = engines.setdefault(bundle.version, Engine(bundle))
        try:
            replayed = _decide(engine, body)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            out.append(Replayed(body["seq"], body["call"], "skipped", recorded, reason=reason))
            continue
        status: Literal["same", "different"] = "same" if replayed == recorded else "different"
        out.append(Replayed(body["seq"], body["call"], status, recorded, replayed))
    return out


def _recorded(body: Mapping[str, Any]) -> Outcome:
    code, detail = body["code"], body.get("detail") or {}
    policy_allowed = body["decision"] == "allow" or code in ("approval_required", "limit_exceeded")
    policy_allowed = policy_allowed or bool(detail.get("reused_call_id"))
    approval = code == "approval_required" or "approval" in detail
    return ("allow" if policy_allowed else "deny", approval, tuple(sorted(body["policies"])))


def _decide(engine: Engine, body: Mapping[str, Any]) -> Outcome:
    request = body["request"]
    decision = engine.decide(
        Principal.parse(body["principal"]), body["tool"], request["resource"], request["context"]
    )
    policies = tuple(sorted(decision.policies))
    if not decision.allowed:
        return ("deny", False, policies)
    return ("allow", approval_of(engine.bundle, decision) is not None, policies)
