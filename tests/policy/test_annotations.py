"""Obligation annotations parse strictly: a malformed one rejects the bundle at its line."""

from __future__ import annotations

import pytest

from warded import BundleError, BundleFiles, PolicyBundle

SCHEMA = (
    "type Session = { id: String, labels: Set<String>, calls: Long };\n"
    "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
    "entity Agent; entity Tool;\n"
    "action t appliesTo { principal: [Agent], resource: [Tool],\n"
    "  context: { args: {}, session: Session, now: Now } };\n"
)


def _load(annotation: str) -> PolicyBundle:
    rule = "permit (principal, action, resource);"
    text = f"{rule}\n{annotation}\n{rule}\n"
    return PolicyBundle.load(BundleFiles((("p.cedar", text),), ("schema.cedarschema", SCHEMA)))


@pytest.mark.requirement("G5")
@pytest.mark.parametrize(
    "annotation",
    ['@redact("")', '@redact("Secrets")', '@redact("secrets; pii")', '@redact("a b")'],
)
def test_a_malformed_redact_annotation_rejects_the_bundle_at_its_line(annotation: str) -> None:
    with pytest.raises(BundleError) as caught:
        _load(annotation)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("p.cedar", 2)


def test_redact_names_parse_into_a_sorted_tuple() -> None:
    bundle = _load('@id("x")\n@redact("pii, secrets,pii")')
    assert bundle.policies["x"].redact == ("pii", "secrets")
    assert "x" in bundle.obligated
