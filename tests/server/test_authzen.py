"""AuthZEN Authorization API 1.0: the certification scenario, run against the fixture bundle.

The scenario's cases are data (authzen/scenario.yaml, from openid/authzen);
every answer the service sends to a valid evaluation request validates
against the specification's response schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from fastapi.testclient import TestClient

from server_helpers import Tokens, bearer, write_config
from warded import ManualClock
from warded.server import create_app, load_config

HERE = Path(__file__).parent / "authzen"
CASES = yaml.safe_load((HERE / "scenario.yaml").read_text())
SCHEMAS = HERE / "schemas"
RESPONSE = jsonschema.Draft202012Validator(
    json.loads((SCHEMAS / "evaluation-response.schema.json").read_text())
)
REQUEST = jsonschema.Draft202012Validator(
    json.loads((SCHEMAS / "evaluation-request.schema.json").read_text())
)
READ = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": {"type": "record", "id": "record-1"},
}


@pytest.fixture(scope="module")
def pdp(
    tmp_path_factory: pytest.TempPathFactory, accounts_file: tuple[Path, Tokens]
) -> Iterator[TestClient]:
    """One PDP for the module: the scenario's requests change nothing but the audit log."""
    declared = yaml.safe_load((HERE / "declared.yaml").read_text())
    config = write_config(
        tmp_path_factory.mktemp("pdp"),
        accounts_file[0],
        policies=str(HERE / "policies"),
        tools=None,
        declared=declared,
    )
    settings = yaml.safe_load(config.read_text())
    del settings["tools"]  # the fixture's actions are all declared: the PEP runs them
    config.write_text(yaml.safe_dump(settings))
    with TestClient(create_app(load_config(config), clock=ManualClock())) as client:
        yield client


def post(client: TestClient, token: str, path: str, body: Any, **headers: str) -> Any:
    return client.post(
        f"/access/v1/{path}",
        content=json.dumps(body),
        headers={**bearer(token), "content-type": "application/json", **headers},
    )


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}:{c['case']}" for c in CASES])
def test_the_certification_scenario(pdp: TestClient, tokens: Tokens, case: dict[str, Any]) -> None:
    answer = post(pdp, tokens.gateway, case["endpoint"], case["request"])
    expect = case["expect"]
    if "status" in expect:
        assert answer.status_code == expect["status"], answer.text
        assert answer.json()["error"]["code"] == "invalid_request"
        return
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    if "decision" in expect:
        RESPONSE.validate(body)
        assert body["decision"] is expect["decision"]
    if "decisions" in expect:
        assert "decision" not in body
        assert len(body["evaluations"]) == len(expect["decisions"])
        for item, wanted in zip(body["evaluations"], expect["decisions"], strict=True):
            RESPONSE.validate(item)
            if wanted is not None:
                assert item["decision"] is wanted
    if "includes" in expect or "results" in expect:
        results = body["results"]
        assert isinstance(results, list)
        kind = case["request"].get(
            "subject" if case["endpoint"] == "search/subject" else "resource"
        )
        for r in results:
            if case["endpoint"] == "search/action":
                assert set(r) == {"name"}
            else:
                assert set(r) == {"type", "id"}
                assert r["type"] == kind["type"]
        names = {r.get("id", r.get("name")) for r in results}
        assert set(expect.get("includes", [])) <= names
        if "results" in expect:
            assert results == expect["results"]


def test_the_scenarios_valid_evaluation_requests_match_the_request_schema() -> None:
    valid = [c for c in CASES if c["endpoint"] == "evaluation" and "status" not in c["expect"]]
    invalid = [c for c in CASES if c["endpoint"] == "evaluation" and "status" in c["expect"]]
    assert len(valid) == 9
    assert len(invalid) == 10
    for c in valid:
        REQUEST.validate(c["request"])
    for c in invalid:
        assert not REQUEST.is_valid(c["request"]), c


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (json.dumps(READ), "text/plain"),
        (json.dumps(READ), None),
        ('{"subject": {"type": "user", "id": "alice"', "application/json"),
        ("", "application/json"),
        ("   ", "application/json"),
        ("[1, 2]", "application/json"),
        ('"just a string"', "application/json"),
        (json.dumps(READ)[:-1] + ', "context": {"limit": NaN}}', "application/json"),
        (json.dumps(READ)[:-1] + ', "context": {"limit": -Infinity}}', "application/json"),
        (json.dumps(READ)[:-1] + ', "context": {"session": "\\ud800"}}', "application/json"),
        (json.dumps(READ).replace('"alice"', '"al\\udc00ice"'), "application/json"),
    ],
    ids=[
        "text-plain",
        "no-type",
        "malformed",
        "empty",
        "blank",
        "array",
        "string",
        "nan",  # not JSON (RFC 8259); Python's parser takes it
        "infinity",
        "lone-surrogate",  # valid JSON text, but not a string of characters
        "lone-surrogate-in-id",
    ],
)
@pytest.mark.parametrize("path", ["evaluation", "evaluations", "search/subject", "search/action"])
def test_bodies_that_are_not_a_json_object_are_400(
    pdp: TestClient, tokens: Tokens, content: str, content_type: str | None, path: str
) -> None:
    headers = bearer(tokens.gateway)
    if content_type:
        headers["content-type"] = content_type
    answer = pdp.post(f"/access/v1/{path}", content=content, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] in ("invalid_request", "unsupported_media_type")


def test_the_request_id_is_echoed_and_made_up_when_absent(pdp: TestClient, tokens: Tokens) -> None:
    echoed = post(pdp, tokens.gateway, "evaluation", READ, **{"x-request-id": "bfe9eb29-ab87"})
    assert echoed.headers["x-request-id"] == "bfe9eb29-ab87"
    made_up = post(pdp, tokens.gateway, "evaluation", READ)
    assert made_up.status_code == 200
    assert made_up.headers["x-request-id"]


def test_the_same_request_gets_the_same_decision(pdp: TestClient, tokens: Tokens) -> None:
    deny = {**READ, "subject": {"type": "user", "id": "bob"}, "action": {"name": "write"}}
    for body, expected in ((READ, True), (deny, False)):
        decisions = {
            post(pdp, tokens.gateway, "evaluation", body).json()["decision"] for _ in range(5)
        }
        assert decisions == {expected}


def test_discovery_publishes_every_endpoint_under_the_base_url(pdp: TestClient) -> None:
    answer = pdp.get("/.well-known/authzen-configuration")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    meta = answer.json()
    base = meta["policy_decision_point"]
    assert base == "http://testserver"
    assert meta["access_evaluation_endpoint"] == base + "/access/v1/evaluation"
    assert meta["access_evaluations_endpoint"] == base + "/access/v1/evaluations"
    for kind in ("subject", "resource", "action"):
        assert meta[f"search_{kind}_endpoint"] == f"{base}/access/v1/search/{kind}"


def test_discovery_names_the_configured_https_identifier(
    tmp_path: Path, accounts_file: tuple[Path, Tokens]
) -> None:
    config = write_config(tmp_path, accounts_file[0], public_url="https://pdp.example.com/")
    with TestClient(create_app(load_config(config), clock=ManualClock())) as client:
        meta = client.get("/.well-known/authzen-configuration").json()
    assert meta["policy_decision_point"] == "https://pdp.example.com"
    assert all(
        v.startswith("https://pdp.example.com/") for k, v in meta.items() if k.endswith("endpoint")
    )


def test_short_circuit_semantics_stop_at_the_first_deny_or_permit(
    pdp: TestClient, tokens: Tokens
) -> None:
    items = [
        {"resource": {"type": "record", "id": "record-1"}},
        {"resource": {"type": "record", "id": "record-2"}},
        {"resource": {"type": "record", "id": "record-1"}},
    ]
    write = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"}}
    deny_first = post(
        pdp,
        tokens.gateway,
        "evaluations",
        {**write, "options": {"evaluations_semantic": "deny_on_first_deny"}, "evaluations": items},
    ).json()
    assert [e["decision"] for e in deny_first["evaluations"]] == [True, False]
    permit_first = post(
        pdp,
        tokens.gateway,
        "evaluations",
        {
            **write,
            "options": {"evaluations_semantic": "permit_on_first_permit"},
            "evaluations": items,
        },
    ).json()
    assert [e["decision"] for e in permit_first["evaluations"]] == [True]
    unknown = post(
        pdp,
        tokens.gateway,
        "evaluations",
        {**write, "options": {"evaluations_semantic": "maybe"}, "evaluations": items},
    )
    assert unknown.status_code == 400


def test_an_evaluation_needing_approval_is_false_with_the_approval_id_then_true_once(
    pdp: TestClient, tokens: Tokens
) -> None:
    publish = {**READ, "subject": {"type": "user", "id": "bob"}, "action": {"name": "publish"}}
    held = post(pdp, tokens.gateway, "evaluation", publish).json()
    RESPONSE.validate(held)
    assert held["decision"] is False
    refusal = held["context"]["refusal"]
    assert refusal["code"] == "approval_required"
    assert refusal["policy"] == "records.publish"
    approval = refusal["approval_id"]
    approved = pdp.post(f"/v1/approvals/{approval}/approve", json={}, headers=bearer(tokens.alice))
    assert approved.status_code == 200, approved.text
    assert post(pdp, tokens.gateway, "evaluation", publish).json() == {"decision": True}
    again = post(pdp, tokens.gateway, "evaluation", publish).json()
    assert again["decision"] is False
    assert again["context"]["refusal"]["approval_id"] != approval


def test_every_evaluation_is_audited_with_the_principal_the_pep_named(
    pdp: TestClient, tokens: Tokens
) -> None:
    post(pdp, tokens.gateway, "evaluation", READ)
    records = pdp.get("/v1/audit?limit=1000", headers=bearer(tokens.admin)).json()["records"]
    decision = next(r for r in reversed(records) if r["kind"] == "decision")
    assert decision["principal"] == 'user::"alice"'
    assert decision["tool"] == "read"
    assert decision["decision"] == "allow"
    assert decision["policies"] == ["records.read"]
    assert decision["request"]["resource"] == {"type": "record", "id": "record-1"}


def test_an_action_the_service_does_not_declare_is_false_not_an_error(
    pdp: TestClient, tokens: Tokens
) -> None:
    answer = post(pdp, tokens.gateway, "evaluation", {**READ, "action": {"name": "launch"}}).json()
    assert answer["decision"] is False
    assert answer["context"]["refusal"]["code"] == "unknown_tool"


def test_a_property_of_the_wrong_type_is_a_false_decision(pdp: TestClient, tokens: Tokens) -> None:
    body = {**READ, "resource": {"type": "record", "id": "record-1", "properties": {"status": 7}}}
    answer = post(pdp, tokens.gateway, "evaluation", body).json()
    assert answer["decision"] is False
    assert answer["context"]["refusal"]["code"] == "invalid_arguments"
