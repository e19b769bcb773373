"""Resources and prompts of server-everything: forwarded only when the config names them,
and then through the gate as actions of their own (listings filtered, reads and gets
decided with their URI or arguments, audited).

The schema is what `warded mcp schema` writes from the upstream's own listing.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_helpers import (
    WAIT,
    audit_records,
    node_bin,
    refusal,
    stdio_gateway,
    without_ref,
    write_config,
    write_schema,
)

pytestmark = pytest.mark.anyio

DOCS = "demo://resource/static/document/"
POLICIES = f"""
@id("docs.read")
permit (principal == Agent::"desktop", action == Action::"ev--resource", resource)
when {{ context.args.uri like "{DOCS}*" }};

@id("docs.not-startup")
forbid (principal, action == Action::"ev--resource", resource)
when {{ context.args.uri like "*startup.md" }};

@id("prompts.simple")
permit (principal == Agent::"desktop", action == Action::"ev--prompt--simple-prompt", resource);

@id("prompts.args-oslo")
permit (principal == Agent::"desktop", action == Action::"ev--prompt--args-prompt", resource)
when {{ context.args.city == "Oslo" }};

@id("tools.echo")
permit (principal == Agent::"desktop", action == Action::"ev__echo", resource);

@id("tools.updates")
permit (principal == Agent::"desktop", action == Action::"ev__toggle-subscriber-updates", resource);
"""


ECHO = 'permit (principal == Agent::"desktop", action == Action::"ev__echo", resource);\n'


def _config(folder: Path, policy: str = POLICIES, **forwarded: bool) -> Path:
    policies = folder / "policies"
    policies.mkdir()
    upstream: dict[str, Any] = {"command": node_bin("mcp-server-everything"), **forwarded}
    config = write_config(folder, policies, {"ev": upstream})
    write_schema(config, policies)
    (policies / "everything.cedar").write_text(policy)
    return config


def _refusal_of(error: MCPError) -> dict[str, Any]:
    return dict(error.data["warded/refusal"])


def _blank_ref(error: MCPError) -> tuple[int, str, str]:
    ref = error.data["warded/refusal"]["ref"]
    data = json.dumps(error.data, sort_keys=True)
    return error.code, error.message.replace(ref, "REF"), data.replace(ref, "REF")


async def test_resources_and_prompts_are_not_forwarded_unless_the_config_names_them(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, ECHO)
    async with stdio_gateway(config, mode="legacy") as client:
        capabilities = client.server_capabilities
        with pytest.raises(MCPError) as listing:
            await client.session.list_prompts()
        with pytest.raises(MCPError) as reading:
            await client.session.read_resource(f"{DOCS}features.md")
        echoed = await client.call_tool("ev__echo", {"message": "hi"})
    assert capabilities.resources is None
    assert capabilities.prompts is None
    assert listing.value.code == types.METHOD_NOT_FOUND
    assert reading.value.code == types.METHOD_NOT_FOUND
    assert not echoed.is_error  # the tools are forwarded all the same
    schema = (tmp_path / "policies" / "schema.cedarschema").read_text()
    assert "ev--resource" not in schema
    assert "ev--prompt--" not in schema


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_resource_listing_is_filtered_and_each_read_is_decided_with_its_uri_and_audited(
    tmp_path: Path, mode: str
) -> None:
    config = _config(tmp_path, resources=True, prompts=True)
    async with stdio_gateway(config, mode=mode) as client:
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        features = await client.read_resource(f"{DOCS}features.md")
        with pytest.raises(MCPError) as startup:
            await client.read_resource(f"{DOCS}startup.md")
        with pytest.raises(MCPError) as dynamic:
            await client.read_resource("demo://resource/dynamic/text/1")
        templates = (await client.list_resource_templates()).resource_templates
    assert f"{DOCS}features.md" in listed
    assert f"{DOCS}startup.md" not in listed  # a forbid on its URI: not listed
    assert all(uri.startswith(DOCS) for uri in listed)
    assert "Features" in features.contents[0].text  # type: ignore[union-attr]
    assert _refusal_of(startup.value)["code"] == "not_permitted"
    assert _refusal_of(startup.value)["policy"] == "docs.not-startup"
    assert _refusal_of(dynamic.value)["code"] == "not_permitted"
    assert json.loads(startup.value.message) == _refusal_of(startup.value)  # the neutral text
    assert templates  # the resource action is visible, so its templates are shown

    decisions = [
        r
        for r in audit_records(tmp_path / "audit.db")
        if r["kind"] == "decision" and r["tool"] == "ev--resource"
    ]
    assert [d["decision"] for d in decisions] == ["allow", "deny", "deny"]
    assert decisions[1]["id"] == _refusal_of(startup.value)["ref"]
    assert all(d["detail"]["call_id"].startswith("mcp:") for d in decisions)


@pytest.mark.requirement("G2")
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_prompts_are_listed_when_permitted_and_each_get_is_decided_with_its_arguments(
    tmp_path: Path, mode: str
) -> None:
    config = _config(tmp_path, resources=True, prompts=True)
    async with stdio_gateway(config, mode=mode) as client:
        listed = {p.name for p in (await client.list_prompts()).prompts}
        simple = await client.get_prompt("ev__simple-prompt")
        oslo = await client.get_prompt("ev__args-prompt", {"city": "Oslo"})
        with pytest.raises(MCPError) as paris:
            await client.get_prompt("ev__args-prompt", {"city": "Paris"})
        with pytest.raises(MCPError) as hidden:
            await client.get_prompt("ev__resource-prompt", {"resourceType": "Text"})
        with pytest.raises(MCPError) as never:
            await client.get_prompt("ev__no-such-prompt", {"resourceType": "Text"})
        with pytest.raises(MCPError) as elsewhere:
            await client.get_prompt("zz__simple-prompt")
        with pytest.raises(MCPError) as unprefixed:
            await client.get_prompt("simple-prompt")
        # the actions behind prompts and resources are not tools
        as_tools = [
            await client.call_tool("ev--prompt--simple-prompt", {}),
            await client.call_tool("ev--resource", {"uri": f"{DOCS}features.md"}),
            await client.call_tool("ev__no-such-tool", {}),
        ]
    assert listed == {"ev__simple-prompt", "ev__args-prompt"}
    assert "simple prompt" in simple.messages[0].content.text  # type: ignore[union-attr]
    assert "Oslo" in oslo.messages[0].content.text  # type: ignore[union-attr]
    assert _refusal_of(paris.value)["code"] == "not_permitted"
    assert _refusal_of(hidden.value)["code"] == "unknown_tool"
    answers = {_blank_ref(e.value) for e in (hidden, never, elsewhere, unprefixed)}
    assert len(answers) == 1  # a hidden prompt is indistinguishable from one that never existed
    assert len({json.dumps(without_ref(r), sort_keys=True) for r in as_tools}) == 1
    assert refusal(as_tools[0])["code"] == "unknown_tool"  # type: ignore[index]

    decisions = [
        (r["tool"], r["decision"])
        for r in audit_records(tmp_path / "audit.db")
        if r["kind"] == "decision" and "prompt" in str(r["tool"])
    ]
    assert decisions[:3] == [
        ("ev--prompt--simple-prompt", "allow"),
        ("ev--prompt--args-prompt", "allow"),
        ("ev--prompt--args-prompt", "deny"),
    ]


async def test_a_subscription_is_allowed_only_where_a_read_is_and_updates_reach_the_subscriber(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, resources=True, prompts=True)
    updates: list[str] = []
    arrived = anyio.Event()

    async def messages(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            arrived.set()

    async with stdio_gateway(config, mode="legacy", message_handler=messages) as client:
        assert client.server_capabilities.resources is not None
        assert client.server_capabilities.resources.subscribe
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)  # removed in 2026-07-28
            await client.subscribe_resource(f"{DOCS}features.md")
            with pytest.raises(MCPError) as refused:
                await client.subscribe_resource(f"{DOCS}startup.md")
        # server-everything sends an update for every subscribed URI when this is toggled on
        started = await client.call_tool("ev__toggle-subscriber-updates", {})
        assert not started.is_error
        with anyio.fail_after(WAIT):
            await arrived.wait()
    assert _refusal_of(refused.value)["code"] == "not_permitted"
    assert set(updates) == {f"{DOCS}features.md"}
    events = [
        r["detail"]
        for r in audit_records(tmp_path / "audit.db")
        if r["kind"] == "event" and r["detail"]["event"] == "mcp.resource_subscribe"
    ]
    assert [(e["uri"], e["upstream"]) for e in events] == [(f"{DOCS}features.md", "ev")]


def _two_upstreams(folder: Path, upstreams: dict[str, dict[str, Any]]) -> Path:
    """A gateway before these upstreams, each forwarding resources; any read is permitted."""
    policies = folder / "policies"
    policies.mkdir()
    config = write_config(folder, policies, upstreams)
    write_schema(config, policies)
    permits = [f'action == Action::"{u}--resource"' for u in upstreams]
    (policies / "read.cedar").write_text(
        "".join(f'permit (principal == Agent::"desktop", {p}, resource);\n' for p in permits)
    )
    return config


@pytest.mark.requirement("G2")
async def test_a_uri_two_upstreams_list_is_read_from_neither(tmp_path: Path) -> None:
    # `evil` lists the very URIs `ev` lists: it must not answer a read meant for `ev`
    everything = node_bin("mcp-server-everything")
    config = _two_upstreams(
        tmp_path,
        {
            "ev": {"command": everything, "resources": True},
            "evil": {"command": everything, "resources": True, "labels": ["untrusted"]},
        },
    )
    async with stdio_gateway(config, mode="legacy") as client:
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        with pytest.raises(MCPError) as shadowed:
            await client.read_resource(f"{DOCS}features.md")
        with pytest.raises(MCPError) as nowhere:
            await client.read_resource("nobody://lists/this")
    assert f"{DOCS}features.md" not in listed
    assert _blank_ref(shadowed.value) == _blank_ref(nowhere.value)  # as a URI nobody owns
    records = audit_records(tmp_path / "audit.db")
    assert not [r for r in records if r.get("tool") in ("ev--resource", "evil--resource")]


@pytest.mark.requirement("G2")
async def test_a_uri_one_upstream_lists_and_anothers_template_matches_is_read_from_neither(
    tmp_path: Path,
) -> None:
    from mcp_helpers import SHIFTY

    hostile = {"command": sys.executable, "args": [str(SHIFTY.with_name("hostile.py"))]}
    config = _two_upstreams(
        tmp_path,
        {
            "ev": {"command": node_bin("mcp-server-everything"), "resources": True},
            "h": {**hostile, "resources": True},
        },
    )
    shadowed_uri = "demo://resource/dynamic/text/1"  # ev's template matches it; h lists it
    async with stdio_gateway(config, mode="legacy") as client:
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        with pytest.raises(MCPError) as shadowed:
            await client.read_resource(shadowed_uri)
        with pytest.raises(MCPError) as nowhere:
            await client.read_resource("nobody://lists/this")
        features = await client.read_resource(f"{DOCS}features.md")  # ev's alone
    assert shadowed_uri not in listed
    assert f"{DOCS}features.md" in listed
    assert _blank_ref(shadowed.value) == _blank_ref(nowhere.value)
    assert "Features" in features.contents[0].text  # type: ignore[union-attr]


@pytest.mark.requirement("G2")
async def test_a_uri_a_second_upstream_claims_after_its_list_changed_is_read_from_neither(
    tmp_path: Path,
) -> None:
    # routing is a map kept from the upstreams' listings: a change must reach it
    from mcp_helpers import SHIFTY

    hostile = {"command": sys.executable, "args": [str(SHIFTY.with_name("hostile.py"))]}
    config = _two_upstreams(
        tmp_path,
        {
            "ev": {"command": node_bin("mcp-server-everything"), "resources": True},
            "h": {**hostile, "resources": True},
        },
    )
    (tmp_path / "policies" / "claim.cedar").write_text(
        'permit (principal == Agent::"desktop", action == Action::"h__claim", resource);\n'
    )
    async with stdio_gateway(config, mode="legacy") as client:
        before = await client.read_resource(f"{DOCS}features.md")
        claimed = await client.call_tool("h__claim", {})  # answered once h was listed again
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        with pytest.raises(MCPError) as shadowed:
            await client.read_resource(f"{DOCS}features.md")
        with pytest.raises(MCPError) as nowhere:
            await client.read_resource("nobody://lists/this")
    assert "Features" in before.contents[0].text  # type: ignore[union-attr]
    assert not claimed.is_error
    assert f"{DOCS}features.md" not in listed
    assert f"{DOCS}startup.md" in listed  # ev's alone still
    assert _blank_ref(shadowed.value) == _blank_ref(nowhere.value)


@pytest.mark.requirement("G1")
async def test_an_upstreams_template_cannot_make_routing_slow(tmp_path: Path) -> None:
    # hostile.py's template is 24 expressions and a "!": matched by backtracking, any
    # URI not ending in "!" would hold the gateway (every upstream, every agent) for ages
    from mcp_helpers import SHIFTY

    hostile = {"command": sys.executable, "args": [str(SHIFTY.with_name("hostile.py"))]}
    config = _two_upstreams(
        tmp_path,
        {
            "ev": {"command": node_bin("mcp-server-everything"), "resources": True},
            "h": {**hostile, "resources": True},
        },
    )
    async with stdio_gateway(config, mode="legacy") as client:
        with anyio.fail_after(WAIT):
            features = await client.read_resource(f"{DOCS}features.md")
            claimed = await client.read_resource(f"{DOCS}features.md!")  # h's template's
    assert "Features" in features.contents[0].text  # type: ignore[union-attr]
    assert claimed.contents[0].text == "the hostile server's text"  # type: ignore[union-attr]


def test_a_template_matches_exactly_the_uris_its_expressions_can_stand_for() -> None:
    # against the regular expression (each expression one or more characters), on every
    # short template and URI over a small alphabet
    import itertools
    import re

    from warded.mcp.forwarded import Template

    def words(alphabet: str, most: int) -> list[str]:
        return ["".join(w) for n in range(most + 1) for w in itertools.product(alphabet, repeat=n)]

    for template in words("ab{}", 5):
        parts = re.split(r"(\{[^}]*\})", template)
        pattern = "".join(".+" if i % 2 else re.escape(p) for i, p in enumerate(parts))
        for uri in words("ab", 6):
            expected = re.fullmatch(pattern, uri, re.DOTALL) is not None
            assert Template.of(template).match(uri) == expected, (template, uri)


@pytest.mark.requirement("G2")
async def test_an_upstream_cannot_announce_an_update_of_anothers_resource(tmp_path: Path) -> None:
    from mcp_helpers import SHIFTY

    hostile = {"command": sys.executable, "args": [str(SHIFTY.with_name("hostile.py"))]}
    config = _two_upstreams(
        tmp_path,
        {
            "ev": {"command": node_bin("mcp-server-everything"), "resources": True},
            "h": {**hostile, "resources": True},
        },
    )
    (tmp_path / "policies" / "updates.cedar").write_text(
        'permit (principal == Agent::"desktop", action == Action::"h__updates", resource);\n'
    )
    updates: list[str] = []
    own = anyio.Event()

    async def messages(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            if str(message.params.uri) == "hostile://own":
                own.set()

    async with stdio_gateway(config, mode="legacy", message_handler=messages) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.subscribe_resource(f"{DOCS}features.md")  # ev's
            await client.subscribe_resource("hostile://own")
        await client.call_tool("h__updates", {})  # features.md "changed", then its own
        with anyio.fail_after(WAIT):
            await own.wait()
    assert updates == ["hostile://own"]
