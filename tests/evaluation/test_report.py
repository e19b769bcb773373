"""The red-team report's human-load table: each policy set's shares are of its own calls."""

from __future__ import annotations

from warded.evaluation.metrics import Summary
from warded.evaluation.report import load_table


def test_each_policy_set_has_its_own_calls_count() -> None:
    s = Summary("v1.2.2", "slack", modes=("at_exposure",))
    s.decidable["original"] = 1
    # the labels runs made 147 attacker write calls, the provenance runs 112
    s.calls[("original", "at_exposure", "labels", "human")] = 147
    s.calls[("original", "at_exposure", "warded", "refused")] = 80
    s.calls[("original", "at_exposure", "warded", "human")] = 32

    _, head, (row,) = load_table([s])
    cells = dict(zip(head, row, strict=True))

    assert cells["labels: calls"] == "147"
    assert cells["labels: to a human"] == "147 (100.0%)"
    assert cells["provenance: calls"] == "112"
    assert cells["provenance: refused"] == "80"
    assert cells["provenance: to a human"] == "32 (28.6%)"
    assert "calls" not in head
