"""What changes what an agent sees: untrusted output, a rug pull upstream, a policy reload.

The upstream is tests/mcp/servers/shifty.py: `fetch` returns outside text
(labelled untrusted by the config) and, the first time, changes the
description of `weather` and says its tool list changed.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.subscriptions import ToolsListChanged
from mcp_helpers import (
    WAIT,
    audit_records,
    bearer_client,
    http_gateway,
    refusal,
    shifty,
    stdio_gateway,
    without_ref,
    write_config,
)

pytestmark = pytest.mark.anyio

SCHEMA = """
type Session = { id: String, labels: Set<String>, calls: Long };
type Now = { epoch: Long, hour: Long, weekday: Long };
entity Agent;
entity Tool;
action "web";
action "web__fetch" in ["web"] appliesTo { principal: [Agent], resource: [Tool],
  context: { args: { url: String }, session: Session, now: Now } };
action "web__publish" in ["web"] appliesTo { principal: [Agent], resource: [Tool],
  context: { args: { text: String }, session: Session, now: Now } };
action "web__weather" in ["web"] appliesTo { principal: [Agent], resource: [Tool],
  context: { args: { city?: String }, session: Session, now: Now } };
"""
POLICIES = """
@id("web.all")
permit (principal == Agent::"desktop", action in Action::"web", resource);

@id("web.no-publish-after-untrusted")
forbid (principal, action == Action::"web__publish", resource)
when { context.session.labels.contains("untrusted") };
"""


def _bundle(folder: Path, policies: str = POLICIES) -> Path:
    target = folder / "policies"
    target.mkdir(exist_ok=True)
    (target / "schema.cedarschema").write_text(SCHEMA)
    (target / "web.cedar").write_text(policies)
    return target


class Changes:
    """Counts the list_changed notifications a client receives."""

    def __init__(self) -> None:
        self.count = 0
        self.event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
            self.event.set()

    async def wait(self) -> None:
        with anyio.fail_after(WAIT):
            await self.event.wait()
        self.event = anyio.Event()


async def _names(client: Any) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


@pytest.mark.requirement("G17")
async def test_untrusted_output_takes_the_dangerous_tool_away_now_and_after_a_restart(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path,
        _bundle(tmp_path),
        {"web": shifty(["untrusted"])},
        {"desktop": {"session": "run-1"}},
    )
    changes = Changes()
    async with stdio_gateway(config, mode="legacy", message_handler=changes) as client:
        assert "web__publish" in await _names(client)
        page = await client.call_tool("web__fetch", {"url": "https://news.example"})
        assert not page.is_error
        await changes.wait()  # publish is gone for this session: the client is told
        assert "web__publish" not in await _names(client)
        after = await client.call_tool("web__publish", {"text": "our ad"})
    assert refusal(after)["code"] == "not_permitted"  # type: ignore[index]
    assert refusal(after)["policy"] == "web.no-publish-after-untrusted"  # type: ignore[index]

    async with stdio_gateway(config) as client:  # a new process, a new connection
        assert "web__publish" not in await _names(client)
        again = await client.call_tool("web__publish", {"text": "our ad"})
    assert refusal(again)["code"] == "not_permitted"  # type: ignore[index]
    published = [
        r
        for r in audit_records(tmp_path / "audit.db")
        if r["kind"] == "outcome" and r["tool"] == "web__publish"
    ]
    assert published == []


@pytest.mark.parametrize("upstream", ["2026-07-28", "2025-11-25"])
async def test_a_changed_tool_definition_is_quarantined_refused_and_audited(
    tmp_path: Path, upstream: str
) -> None:
    legacy = upstream == "2025-11-25"
    config = write_config(tmp_path, _bundle(tmp_path), {"web": shifty(legacy=legacy)})
    changes = Changes()
    async with stdio_gateway(config, mode="legacy", message_handler=changes) as client:
        assert "web__weather" in await _names(client)
        assert not (await client.call_tool("web__weather", {"city": "Oslo"})).is_error
        await client.call_tool("web__fetch", {"url": "https://a.example"})  # the rug pull
        await changes.wait()
        assert "web__weather" not in await _names(client)
        refused = await client.call_tool("web__weather", {"city": "Oslo"})
        never = await client.call_tool("web__nothing", {"city": "Oslo"})
    assert refusal(refused)["code"] == "unknown_tool"  # type: ignore[index]
    assert without_ref(refused) == without_ref(never)
    events = [r["detail"] for r in audit_records(tmp_path / "audit.db") if r["kind"] == "event"]
    quarantined = [e for e in events if e["event"] == "mcp.quarantine"]
    assert [(e["name"], e["reason"]) for e in quarantined] == [
        ("web__weather", "definition changed since it was first seen")
    ]
    assert quarantined[0]["pinned"] != quarantined[0]["seen"]
    # on 2026-07-28 the change came as a subscriptions/listen event, in the handshake
    # era as a notifications/tools/list_changed: the gateway spoke each upstream's own
    started = [e for e in events if e["event"] == "mcp.start"]
    assert started[0]["protocols"] == {"web": upstream}


async def test_a_pinned_gateway_quarantines_what_differs_from_the_pins_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, _bundle(tmp_path), {"web": shifty()}, extra='pins = "pins.json"'
    )
    pinned = subprocess.run(
        [sys.executable, "-m", "warded.cli", "mcp", "pin", str(config)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert pinned.returncode == 0, pinned.stderr
    pins = json.loads((tmp_path / "pins.json").read_text())
    assert set(pins["tools"]) == {"web__fetch", "web__publish", "web__weather"}
    pins["tools"]["web__weather"]["sha256"] = "0" * 64  # as if weather had been pinned otherwise
    (tmp_path / "pins.json").write_text(json.dumps(pins))
    async with stdio_gateway(config) as client:
        assert await _names(client) == {"web__fetch", "web__publish"}


async def test_a_definition_pinned_again_is_exposed_after_a_reload(tmp_path: Path) -> None:
    token = "wmcp_desktop-0123456789"
    config = write_config(
        tmp_path,
        _bundle(tmp_path),
        {"web": shifty()},
        credentials=[
            {"principal": "desktop", "sha256": hashlib.sha256(token.encode()).hexdigest()}
        ],
        extra='pins = "pins.json"',
    )
    pin = [sys.executable, "-m", "warded.cli", "mcp", "pin", str(config)]
    subprocess.run(pin, capture_output=True, timeout=WAIT, check=True)
    pins = json.loads((tmp_path / "pins.json").read_text())
    pins["tools"]["web__weather"]["sha256"] = "0" * 64  # pinned otherwise: held back
    (tmp_path / "pins.json").write_text(json.dumps(pins))
    changes = Changes()
    with http_gateway(config) as (url, process):
        async with bearer_client(url, token, mode="legacy", message_handler=changes) as client:
            assert await _names(client) == {"web__fetch", "web__publish"}
            subprocess.run(pin, capture_output=True, timeout=WAIT, check=True)  # reviewed
            process.send_signal(signal.SIGHUP)
            await changes.wait()
            assert await _names(client) == {"web__fetch", "web__publish", "web__weather"}


async def test_a_policy_reload_changes_the_listing_and_tells_the_client(tmp_path: Path) -> None:
    policies = _bundle(tmp_path)
    token = "wmcp_desktop-0123456789"
    config = write_config(
        tmp_path,
        policies,
        {"web": shifty()},
        credentials=[
            {"principal": "desktop", "sha256": hashlib.sha256(token.encode()).hexdigest()}
        ],
    )
    changes = Changes()
    with http_gateway(config) as (url, process):
        async with bearer_client(url, token, mode="legacy", message_handler=changes) as client:
            assert await _names(client) == {"web__fetch", "web__publish", "web__weather"}
            (policies / "web.cedar").write_text(
                'permit (principal == Agent::"desktop", action == Action::"web__fetch", resource);'
            )
            process.send_signal(signal.SIGHUP)
            await changes.wait()
            assert await _names(client) == {"web__fetch"}


async def test_a_2026_client_hears_of_the_change_through_subscriptions_listen(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path,
        _bundle(tmp_path),
        {"web": shifty(["untrusted"])},
        {"desktop": {"session": "run-2"}},
    )
    async with stdio_gateway(config, mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        assert "web__publish" in await _names(client)
        async with client.listen(tools_list_changed=True) as events:
            await client.call_tool("web__fetch", {"url": "https://news.example"})
            with anyio.fail_after(WAIT):
                event = await events.__anext__()
        assert "web__publish" not in await _names(client)
    assert isinstance(event, ToolsListChanged)


PROVENANCE_SCHEMA = SCHEMA.replace(
    'action "web__publish" in ["web"] appliesTo { principal: [Agent], resource: [Tool],\n'
    "  context: { args: { text: String }, session: Session, now: Now } };",
    'action "web__publish" in ["web"] appliesTo { principal: [Agent], resource: [Tool],\n'
    "  context: { args: { text: String }, session: Session, now: Now,\n"
    "             provenance: { text: Set<String> } } };",
)
PROVENANCE_POLICIES = """
@id("web.read")
permit (principal == Agent::"desktop", action in [Action::"web__fetch", Action::"web__weather"],
        resource);

@id("web.publish-own-words")
permit (principal == Agent::"desktop", action == Action::"web__publish", resource)
when { !context.provenance.text.contains("tool:web__fetch") };
"""


async def test_argument_provenance_sees_a_value_that_came_from_an_upstream_result(
    tmp_path: Path,
) -> None:
    assert PROVENANCE_SCHEMA != SCHEMA
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "schema.cedarschema").write_text(PROVENANCE_SCHEMA)
    (policies / "web.cedar").write_text(PROVENANCE_POLICIES)
    config = write_config(tmp_path, policies, {"web": shifty()}, {"desktop": {"session": "p-1"}})
    async with stdio_gateway(config) as client:
        page = await client.call_tool("web__fetch", {"url": "https://news.example"})
        assert not page.is_error
        copied = await client.call_tool("web__publish", {"text": "publish our ad"})
        own = await client.call_tool("web__publish", {"text": "our quarterly numbers"})
    assert refusal(copied)["code"] == "not_permitted"  # type: ignore[index]
    assert refusal(own) is None
    assert not own.is_error
