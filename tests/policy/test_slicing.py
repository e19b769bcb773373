"""Differential tests: the sliced engine against Cedar on the whole policy set."""

from __future__ import annotations

import cedarpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy_strategies as gen
from warded import Principal
from warded.policy.engine import Engine
from warded.policy.slicing import slice_tree

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_cedar(bundle, request):  # type: ignore[no-untyped-def]
    return cedarpy.is_authorized(request.cedar(), bundle.policy_set, bundle.entities, bundle.schema)


@pytest.mark.requirement("G4")
@FAST
@given(
    policies=gen.policy_lists(max_size=10),
    split=st.integers(0, 10),
    requests=st.lists(gen.requests(), min_size=1, max_size=12),
)
def test_sliced_decision_equals_cedar_on_the_full_policy_set(policies, split, requests) -> None:
    bundle = gen.load(policies, split=min(split, len(policies)))
    engine = Engine(bundle)
    for request in requests:
        sliced = engine.decide(
            request.principal, request.tool, request.resource(), request.context()
        )
        full = full_cedar(bundle, request)
        clean_allow = full.decision == cedarpy.Decision.Allow and not full.diagnostics.errors
        assert sliced.allowed == clean_allow
        assert set(sliced.policies) == set(full.diagnostics.reasons)
        assert set(sliced.errors) == set(full.diagnostics.errors)


@pytest.mark.requirement("G4")
@settings(max_examples=150, deadline=None)
@given(policies=gen.policy_lists(min_size=1, max_size=10), request=gen.requests())
def test_a_policy_left_out_of_a_slice_cannot_be_satisfied_by_its_request(policies, request) -> None:
    # Each dropped policy, alone with a catch-all permit, must not change Cedar's answer
    # for the request: its scope cannot match, so it is never determining.
    bundle = gen.load(policies)
    kept = slice_tree(
        bundle.tree,
        (request.principal.type, request.principal.id),
        ("Action", request.tool),
        bundle.ancestors,
    ).static_policies
    for pid, node in bundle.tree.static_policies.items():
        if pid in kept:
            continue
        alone = cedarpy.PolicySet.from_pst(
            type(bundle.tree)(templates={}, static_policies={pid: node}, template_links=())
        )
        result = cedarpy.is_authorized(request.cedar(), alone, bundle.entities, bundle.schema)
        assert result.diagnostics.reasons == []
        assert result.diagnostics.errors == []


@pytest.mark.requirement("G4")
def test_slices_follow_nested_principal_groups_and_nested_action_groups() -> None:
    policies = [
        gen.Policy("permit", 'principal in Group::"all"', 'action in Action::"everything"'),
        gen.Policy("forbid", 'principal is Bot in Group::"eng"', 'action in [Action::"reads"]'),
        gen.Policy("permit", 'principal == Agent::"bob"', 'action == Action::"admin"'),
    ]
    bundle = gen.load(policies)
    engine = Engine(bundle)
    alice, bot1, bob = Principal("Agent", "alice"), Principal("Bot", "bot1"), Principal.agent("bob")
    cases = [
        (alice, "write_b", True, {"p0"}),
        (bot1, "read_a", False, {"p1"}),
        (bot1, "write_b", False, {"p1"}),  # write_b is in writes and in reads
        (bot1, "write_a", True, {"p0"}),
        (bob, "admin", True, {"p2"}),
        (alice, "admin", False, set()),
    ]
    for principal, tool, allowed, determining in cases:
        request = gen.Request(principal, tool, {"n": 1, "amount": 1.0, "who": "x"})
        decision = engine.decide(principal, tool, request.resource(), request.context())
        assert (decision.allowed, set(decision.policies)) == (allowed, determining)
