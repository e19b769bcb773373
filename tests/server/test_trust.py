"""`POST /v1/trust`: the host declares the user's own words, and only a host the config allows.

The bundle is the banking example's with argument provenance on `send_money`:
a payment goes without a person only to a recipient found in text the host
declared under `user`; any other recipient waits for finance.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server_helpers import BANKING, Tokens, bearer, post_call, write_config
from service_tools import EXECUTED
from warded import ManualClock
from warded.server import create_app, load_config
from warded.server.config import ConfigError

TYPED = "GB82WEST12345698765432"  # the user typed it, in groups (below)
INJECTED = "DE89370400440532013000"  # a payee the user never mentioned
USER_SAID = "Please pay my landlord 50.00 for rent: GB82 WEST 1234 5698 7654 32. Thanks!"
PAYMENTS = """
@id("payments.recipient-from-user")
permit (principal in Team::"billing", action == Action::"send_money", resource)
when { context.provenance.recipient.contains("user") };

@id("payments.otherwise-ask")
@approval("finance")
permit (principal in Team::"billing", action == Action::"send_money", resource)
when { !context.provenance.recipient.contains("user") };
"""

# G15: only an account the config grants may declare trusted text; G18: nothing else becomes 'user'
pytestmark = [pytest.mark.requirement("G15"), pytest.mark.requirement("G18")]


def provenance_bundle(folder: Path) -> Path:
    target = folder / "policies"
    shutil.copytree(BANKING, target)
    schema = (target / "schema.cedarschema").read_text()
    declared = schema.replace(
        "args: { recipient: String, amount: decimal, subject: String },\n",
        "args: { recipient: String, amount: decimal, subject: String },\n"
        "    provenance: { recipient: Set<String> },\n",
    )
    assert declared != schema
    (target / "schema.cedarschema").write_text(declared)
    (target / "payments.cedar").write_text(PAYMENTS)
    return target


@pytest.fixture
def trust_config(tmp_path: Path, accounts_file: tuple[Path, Tokens]) -> Path:
    return write_config(
        tmp_path,
        accounts_file[0],
        policies=str(provenance_bundle(tmp_path)),
        trust={"billing-bot": ["user"]},
    )


@pytest.fixture
def app_client(trust_config: Path, clock: ManualClock) -> Iterator[TestClient]:
    with TestClient(create_app(load_config(trust_config), clock=clock)) as c:
        yield c


def declare(client: TestClient, token: str, **body: Any) -> Any:
    return client.post(
        "/v1/trust", json={"session": "s-1", "text": USER_SAID, **body}, headers=bearer(token)
    )


def pay(client: TestClient, token: str, recipient: str, session: str = "s-1") -> Any:
    args = {"recipient": recipient, "amount": 50, "subject": "rent"}
    return post_call(client, token, "send_money", args, session=session)


def remembered(client: TestClient, session: str = "s-1") -> int:
    state = client.app.state.service.gate.session_state(session)  # type: ignore[attr-defined]
    count: int = state.remembered
    return count


def trust_events(client: TestClient) -> list[dict[str, Any]]:
    store = client.app.state.service.gate.store  # type: ignore[attr-defined]
    return [
        r.body["detail"]
        for r in store.records()
        if r.body.get("detail", {}).get("event") == "session.trust"
    ]


def test_the_recipient_the_user_typed_is_paid_and_one_they_did_not_type_waits(
    app_client: TestClient, tokens: Tokens
) -> None:
    before = pay(app_client, tokens.billing, TYPED)
    assert before["refusal"]["code"] == "approval_required"  # not declared yet: it waits

    answer = declare(app_client, tokens.billing)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"session": "s-1", "source": "user", "chars": len(USER_SAID)}

    ran = len(EXECUTED)
    typed = pay(app_client, tokens.billing, TYPED)
    assert typed["status"] == "ok", typed
    assert EXECUTED[ran:] == [("send_money", {"recipient": TYPED, "amount": 50})]
    injected = pay(app_client, tokens.billing, INJECTED)
    assert injected["status"] == "refused"
    assert injected["refusal"]["code"] == "approval_required"
    assert injected["refusal"]["policy"] == "payments.otherwise-ask"
    assert len(EXECUTED) == ran + 1

    # audited by the gate, as `Gate.trust` does: the source and the length, never the text,
    # and the principal of the agent account that declared it
    assert trust_events(app_client) == [
        {
            "event": "session.trust",
            "session": "s-1",
            "source": "user",
            "chars": len(USER_SAID),
            "declared_by": 'Agent::"billing-bot"',
        }
    ]


def test_another_session_does_not_see_the_text_and_a_restart_still_does(
    trust_config: Path, tokens: Tokens, clock: ManualClock
) -> None:
    with TestClient(create_app(load_config(trust_config), clock=clock)) as first:
        assert declare(first, tokens.billing).status_code == 200
        other = pay(first, tokens.billing, TYPED, session="s-2")
        assert other["refusal"]["code"] == "approval_required"
    with TestClient(create_app(load_config(trust_config), clock=clock)) as second:
        assert pay(second, tokens.billing, TYPED)["status"] == "ok"  # kept in the store
        assert pay(second, tokens.billing, TYPED, session="s-2")["status"] == "refused"


def test_an_agent_the_config_does_not_name_may_not_declare(
    app_client: TestClient, tokens: Tokens
) -> None:
    answer = declare(app_client, tokens.support)
    assert answer.status_code == 403
    assert answer.json()["error"] == {
        "code": "forbidden",
        "message": "this agent may not declare trusted text as 'user' (setting: trust)",
    }
    assert remembered(app_client) == 0
    assert pay(app_client, tokens.billing, TYPED)["refusal"]["code"] == "approval_required"
    assert trust_events(app_client) == []


@pytest.mark.parametrize("source", ["helpdesk", "approved"])
def test_a_source_name_not_listed_for_the_agent_is_refused(
    app_client: TestClient, tokens: Tokens, source: str
) -> None:
    answer = declare(app_client, tokens.billing, source=source)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert remembered(app_client) == 0


@pytest.mark.parametrize(
    "source", ["User", "tool:read_document", "tools", "untrusted", "9lives", "us er", 7, None]
)
def test_a_malformed_source_name_is_invalid_and_the_message_does_not_echo_it(
    app_client: TestClient, tokens: Tokens, source: Any
) -> None:
    answer = declare(app_client, tokens.billing, source=source)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("source: ")
    assert str(source) not in error["message"].removeprefix("source: ").replace("'untrusted'", "")
    assert remembered(app_client) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"text": 12345},
        {"text": None},
        {"text": ["GB82 WEST 1234 5698 7654 32"]},
        {"text": {"user": USER_SAID}},
        {"text": ""},
        {"session": ""},
        {"session": "s" * 257},
        {"session": 1},
        {"principal": 'Agent::"support-bot"'},
    ],
)
def test_bad_input_is_a_precise_400_and_nothing_is_remembered(
    app_client: TestClient, tokens: Tokens, body: dict[str, Any]
) -> None:
    answer = declare(app_client, tokens.billing, **body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].split(":")[0] == next(iter(body))
    assert remembered(app_client) == 0
    assert trust_events(app_client) == []


def test_a_missing_text_is_named(app_client: TestClient, tokens: Tokens) -> None:
    answer = app_client.post("/v1/trust", json={"session": "s-1"}, headers=bearer(tokens.billing))
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "text: Field required"


def test_an_oversize_text_is_refused_whole_and_the_limit_itself_is_taken(
    app_client: TestClient, tokens: Tokens
) -> None:
    limit = app_client.app.state.service.gate.remember // 4  # type: ignore[attr-defined]
    assert limit == 65_536
    over = declare(app_client, tokens.billing, text=USER_SAID + "x" * (limit - len(USER_SAID) + 1))
    assert over.status_code == 413
    assert over.json()["error"] == {
        "code": "payload_too_large",
        "message": f"text: {limit + 1} characters; a trusted text has at most {limit}",
    }
    assert remembered(app_client) == 0
    assert pay(app_client, tokens.billing, TYPED)["refusal"]["code"] == "approval_required"

    exact = declare(app_client, tokens.billing, text=USER_SAID + "x" * (limit - len(USER_SAID)))
    assert exact.status_code == 200
    assert remembered(app_client) == 1
    assert not app_client.app.state.service.gate.session_state("s-1").overflowed  # type: ignore[attr-defined]


@pytest.mark.parametrize("who", ["gateway", "alice", "admin"])
def test_enforcement_points_and_people_may_not_declare(
    app_client: TestClient, tokens: Tokens, who: str
) -> None:
    answer = declare(app_client, getattr(tokens, who))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert remembered(app_client) == 0


def test_without_a_credential_it_is_401(app_client: TestClient) -> None:
    answer = app_client.post("/v1/trust", json={"session": "s-1", "text": USER_SAID})
    assert answer.status_code == 401


def test_a_call_cannot_carry_trusted_text_in_its_body(
    app_client: TestClient, tokens: Tokens
) -> None:
    args = {"recipient": TYPED, "amount": 50, "subject": USER_SAID}
    answer = app_client.post(
        "/v1/calls",
        json={"tool": "send_money", "args": args, "session": "s-1", "trust": USER_SAID},
        headers=bearer(tokens.billing),
    )
    assert answer.status_code == 400
    # the user's words in another argument of the call are the model's, not the user's
    assert pay(app_client, tokens.billing, TYPED)["refusal"]["code"] == "approval_required"
    same_call = post_call(app_client, tokens.billing, "send_money", args, session="s-1")
    assert same_call["refusal"]["code"] == "approval_required"
    assert remembered(app_client) == 0


def test_by_default_no_agent_may_declare(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], clock: ManualClock, tokens: Tokens
) -> None:
    config = write_config(tmp_path, accounts_file[0], policies=str(provenance_bundle(tmp_path)))
    assert load_config(config).trust == {}
    with TestClient(create_app(load_config(config), clock=clock)) as client:
        assert declare(client, tokens.billing).status_code == 403
        assert remembered(client) == 0


@pytest.mark.parametrize(
    ("trust", "message"),
    [
        (["billing-bot"], "trust has the wrong type (list)"),
        ({"billing-bot": "user"}, "trust.billing-bot must be a non-empty list of source names"),
        ({"billing-bot": []}, "trust.billing-bot must be a non-empty list of source names"),
        ({"billing-bot": ["User"]}, "trust.billing-bot: a trusted source is named in lowercase"),
        ({"billing-bot": ["tool:x"]}, "trust.billing-bot: a trusted source is named in"),
        ({"billing-bot": ["untrusted"]}, "trust.billing-bot: 'untrusted' cannot name"),
        ({"billing-bot": ["approved"]}, "trust.billing-bot: 'approved' is what a person approved"),
        ({"billing-bot": [1]}, "trust.billing-bot: a trusted source is named in"),
        ({1: ["user"]}, "trust is keyed by agent account ids"),
    ],
)
def test_a_wrong_trust_setting_stops_the_service_naming_the_key(
    tmp_path: Path, accounts_file: tuple[Path, Tokens], trust: Any, message: str
) -> None:
    config = write_config(tmp_path, accounts_file[0], trust=trust)
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert message in str(raised.value)
