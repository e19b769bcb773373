"""Through a real gate: results of any type are viewed before they are scanned and masked."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from pydantic import BaseModel

from warded import BundleFiles, Gate, PolicyBundle, Principal, Session, ToolFailure

pytest.importorskip("detect_secrets")

from warded.scanners import SecretsScanner

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SCHEMA = (
    "type Session = { id: String, labels: Set<String>, calls: Long };\n"
    "type Now = { epoch: Long, hour: Long, weekday: Long };\n"
    "entity Agent; entity Tool;\n"
    "action fetch appliesTo { principal: [Agent], resource: [Tool],\n"
    "  context: { args: {}, session: Session, now: Now } };\n"
)


class Email(BaseModel):
    sender: str
    body: str


@dataclasses.dataclass(frozen=True)
class Page:
    url: str
    text: str


def _gate(result: Any, *, opaque: bool = False) -> tuple[Gate, Session]:
    files = BundleFiles(
        (("p.cedar", '@id("fetch")\n@redact("secrets")\npermit (principal, action, resource);\n'),),
        ("schema.cedarschema", SCHEMA),
    )
    gate = Gate(PolicyBundle.load(files), output_scanners=[SecretsScanner()])
    gate.register("fetch", {"type": "object"}, lambda: result, opaque=opaque)
    return gate, Session("s")


def _audit(gate: Gate) -> bytes:
    return b"".join(r.raw for r in gate.store.records())


@pytest.mark.parametrize(
    "result",
    [
        Email(sender="ops@example.com", body=f"the token is {TOKEN}"),
        Page("https://example.com", f"token {TOKEN}"),
        f"token {TOKEN}".encode(),
        (f"token {TOKEN}", 1),
        {"items": {f"token {TOKEN}"}},
    ],
)
def test_a_secret_in_a_result_of_any_type_is_masked_and_labels_the_session(result: Any) -> None:
    gate, session = _gate(result)
    out = gate.call(Principal.agent("a"), "fetch", {}, session)
    assert type(out) is type(result)
    assert TOKEN not in repr(out)
    assert "[redacted:github_token]" in str(out)
    assert "secrets" in gate.session_state(session).labels
    assert TOKEN.encode() not in _audit(gate)


def test_a_result_without_a_view_is_a_tool_failure_saying_why() -> None:
    gate, session = _gate(object())
    out = gate.call(Principal.agent("a"), "fetch", {}, session)
    assert isinstance(out, ToolFailure)
    outcome = json.loads(list(gate.store.records())[-1].raw)
    assert outcome["outcome"] == "ok"  # the tool ran; what it returned is withheld
    assert "has no JSON view" in outcome["detail"]["withheld"]


def test_an_opaque_tool_is_never_masked_and_labels_the_session_untrusted() -> None:
    blob = object()
    gate, session = _gate(blob, opaque=True)
    assert gate.call(Principal.agent("a"), "fetch", {}, session) is blob
    assert "untrusted" in gate.session_state(session).labels
