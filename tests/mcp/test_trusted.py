"""Trusted text through the gateway: `_meta["io.warded/trusted"]`, set by the MCP client.

The upstream is the real filesystem server. The bundle lets an agent write a
file only where the user said (`context.provenance.path` contains `user`):
the host declares the user's words on a request's `_meta`, the model picks
the tool and its arguments. A path the user did not type is refused.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp_helpers import (
    NODE,
    WAIT,
    audit_records,
    bearer_client,
    copy_example_policies,
    filesystem,
    gateway_command,
    http_gateway,
    refusal,
    stdio_gateway,
    write_config,
)

from warded.mcp.config import GatewayConfigError, load
from warded.mcp.trusted import MAX_ENTRIES, TRUSTED_META

# G15: only an agent the config grants may declare trusted text; G18: nothing else becomes 'user'
pytestmark = [pytest.mark.anyio, pytest.mark.requirement("G15"), pytest.mark.requirement("G18")]

POLICIES = """
@id("fs.read")
permit (principal, action == Action::"fs__read_text_file", resource);

@id("fs.write-where-the-user-said")
permit (principal, action == Action::"fs__write_file", resource)
when { context.provenance.path.contains("user") };
"""
HOST, PLAIN = "wmcp_host-token-0123456789", "wmcp_plain-token-0123456789"
LIMIT = 65_536  # a quarter of what a session remembers by default


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _bundle(folder: Path) -> Path:
    policies = copy_example_policies(folder)
    schema = (policies / "schema.cedarschema").read_text()
    write = "context: { args: { path: String, content: String }, session: Session, now: Now },"
    assert schema.count(write) == 1
    (policies / "schema.cedarschema").write_text(
        schema.replace(
            write,
            "context: { args: { path: String, content: String }, session: Session, now: Now,\n"
            "             provenance: { path: Set<String> } },",
        )
    )
    (policies / "files.cedar").write_text(POLICIES)
    entities = [
        {"uid": {"type": "Agent", "id": name}, "attrs": {}, "parents": []}
        for name in ("desktop", "host", "plain")
    ]
    (policies / "entities.json").write_text(json.dumps(entities))
    return policies


class Folder:
    """The shared folder, the path the user typed, and one they did not."""

    def __init__(self, tmp_path: Path) -> None:
        self.shared = tmp_path / "shared"
        (self.shared / "notes").mkdir(parents=True)
        self.typed = str(self.shared / "notes" / "plan.md")
        self.other = str(self.shared / "notes" / "exfil.md")
        self.said = f"Please write our plan to {self.typed} and nothing else."

    def written(self) -> set[str]:
        return {p.name for p in (self.shared / "notes").iterdir()}


def _config(tmp_path: Path, folder: Folder, **principals: dict[str, Any]) -> Path:
    return write_config(
        tmp_path,
        _bundle(tmp_path),
        {"fs": filesystem(folder.shared)},
        principals or {"desktop": {"session": "task-1", "trust": ["user"]}},
        stdio=next(iter(principals), "desktop"),
        credentials=[
            {"principal": "host", "sha256": _sha(HOST)},
            {"principal": "plain", "sha256": _sha(PLAIN)},
        ]
        if "host" in principals
        else None,
    )


def carrier(*entries: Any) -> Any:
    """A request's `_meta` carrying these entries (as the host sets it)."""
    return _raw(list(entries))


def _raw(value: Any) -> Any:
    return {TRUSTED_META: value}


def _write(path: str) -> dict[str, str]:
    return {"path": path, "content": "the plan"}


def _events(db: Path, event: str) -> list[dict[str, Any]]:
    return [r["detail"] for r in audit_records(db) if r.get("detail", {}).get("event") == event]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_path_the_user_typed_is_written_and_one_they_did_not_is_refused(
    tmp_path: Path, mode: str
) -> None:
    folder = Folder(tmp_path)
    config = _config(tmp_path, folder)
    async with stdio_gateway(config, mode=mode) as client:
        before = await client.call_tool("fs__write_file", _write(folder.typed))
        assert refusal(before)["code"] == "not_permitted"  # type: ignore[index]
        # the host sends the user's words with the call the model asked for
        typed = await client.call_tool(
            "fs__write_file",
            _write(folder.typed),
            meta=carrier({"source": "user", "text": folder.said}),
        )
        assert refusal(typed) is None, typed
        other = await client.call_tool("fs__write_file", _write(folder.other))
    assert refusal(other)["code"] == "not_permitted"  # type: ignore[index]
    assert folder.written() == {"plan.md"}

    db = tmp_path / "audit.db"
    assert _events(db, "session.trust") == [
        {
            "event": "session.trust",
            "session": "task-1",
            "source": "user",
            "chars": len(folder.said),
            "declared_by": 'Agent::"desktop"',
        }
    ]
    allowed = [r for r in audit_records(db) if r["kind"] == "decision" and r["decision"] == "allow"]
    assert [r["detail"]["provenance"] for r in allowed] == [{"path": ["user"]}]

    async with stdio_gateway(config, mode=mode) as client:  # a new process: the store remembers
        again = await client.call_tool("fs__write_file", _write(folder.typed))
    assert refusal(again) is None


def test_the_typescript_sdk_client_sends_the_carrier_as_the_request_params_meta(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path)
    config = _config(tmp_path, folder)
    calls = [
        ["fs__write_file", _write(folder.other), carrier({"text": folder.said})],
        ["fs__write_file", _write(folder.typed)],
    ]
    done = subprocess.run(
        ["node", str(NODE / "ts-client.mjs"), *gateway_command(config), "--", json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )
    other, typed = json.loads(done.stdout)["results"]
    assert other["_meta"]["warded/refusal"]["code"] == "not_permitted"
    assert "_meta" not in typed, typed
    assert folder.written() == {"plan.md"}


async def test_a_carrier_on_a_listing_counts_for_the_calls_after_it(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    async with stdio_gateway(_config(tmp_path, folder)) as client:
        await client.list_tools(meta=carrier({"text": folder.said}))
        typed = await client.call_tool("fs__write_file", _write(folder.typed))
    assert refusal(typed) is None
    assert folder.written() == {"plan.md"}


async def test_a_carrier_inside_the_tool_arguments_never_counts(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    as_argument = {**_write(folder.typed), "_meta": carrier({"text": folder.said})}
    in_content = {"path": folder.typed, "content": json.dumps(carrier({"text": folder.said}))}
    async with stdio_gateway(_config(tmp_path, folder)) as client:
        first = await client.call_tool("fs__write_file", as_argument)
        second = await client.call_tool("fs__write_file", in_content)
        third = await client.call_tool(
            "fs__write_file", {"path": folder.typed, "content": folder.said}
        )
    assert refusal(first)["code"] == "not_permitted"  # type: ignore[index]
    assert refusal(second)["code"] == "not_permitted"  # type: ignore[index]
    assert refusal(third)["code"] == "not_permitted"  # type: ignore[index]
    assert folder.written() == set()
    assert _events(tmp_path / "audit.db", "session.trust") == []


REFUSED = [
    (
        {"source": "helpdesk", "text": "x"},
        "may not declare trusted text as 'helpdesk' (principals.desktop.trust: user)",
    ),
    ({"source": "approved", "text": "x"}, "may not declare trusted text as 'approved'"),
    ({"source": "User", "text": "x"}, ".source: a trusted source is named in lowercase"),
    ({"source": "tool:fs__read_text_file", "text": "x"}, ".source: a trusted source is named"),
    ({"source": "untrusted", "text": "x"}, ".source: a trusted source is named"),
    ({"source": "user"}, "must be an object with text and, optionally, source only"),
    ({"text": "x", "by": "me"}, "must be an object with text and, optionally, source only"),
    ({"text": 42}, ".text must be a non-empty string"),
    ({"text": ""}, ".text must be a non-empty string"),
    ("just text", "must be an object with text"),
]


@pytest.mark.parametrize(("entry", "message"), REFUSED)
async def test_a_bad_carrier_is_refused_with_the_reason_and_nothing_is_remembered(
    tmp_path: Path, entry: Any, message: str
) -> None:
    folder = Folder(tmp_path)
    said = {"text": folder.said}  # a good entry beside the bad one: taken whole or not at all
    async with stdio_gateway(_config(tmp_path, folder)) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool(
                "fs__write_file",
                _write(folder.typed),
                meta=carrier(said, entry),
            )
        after = await client.call_tool("fs__write_file", _write(folder.typed))
    assert raised.value.code == types.INVALID_PARAMS
    assert message in raised.value.message
    assert refusal(after)["code"] == "not_permitted"  # type: ignore[index]
    assert folder.written() == set()
    db = tmp_path / "audit.db"
    assert _events(db, "session.trust") == []
    assert [e["reason"] for e in _events(db, "mcp.trust_refused")] == [raised.value.message]
    decided = [r for r in audit_records(db) if r["kind"] == "decision"]
    assert len(decided) == 1  # `after`: the refused request never reached the gate


@pytest.mark.parametrize(
    "value",
    [
        "Please write our plan",
        {"text": "Please write our plan"},
        [],
        [{"text": "x"}] * (MAX_ENTRIES + 1),
    ],
)
async def test_a_carrier_that_is_not_a_list_of_entries_is_refused(
    tmp_path: Path, value: Any
) -> None:
    folder = Folder(tmp_path)
    async with stdio_gateway(_config(tmp_path, folder)) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("fs__write_file", _write(folder.typed), meta=_raw(value))
    assert raised.value.code == types.INVALID_PARAMS
    assert f"must be a list of 1 to {MAX_ENTRIES} objects" in raised.value.message
    assert folder.written() == set()


async def test_an_oversize_carrier_is_refused_and_the_limit_itself_is_taken(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path)
    pad = "x" * (LIMIT - len(folder.said))
    async with stdio_gateway(_config(tmp_path, folder)) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool(
                "fs__write_file",
                _write(folder.typed),
                meta=carrier({"text": folder.said + pad + "x"}),
            )
        with pytest.raises(MCPError) as split:  # the bound is on all the texts together
            await client.call_tool(
                "fs__write_file",
                _write(folder.typed),
                meta=carrier({"text": folder.said}, {"text": pad + "x"}),
            )
        refused = await client.call_tool("fs__write_file", _write(folder.typed))
        exact = await client.call_tool(
            "fs__write_file",
            _write(folder.typed),
            meta=carrier({"text": folder.said + pad}),
        )
    expected = f"the texts have more than the {LIMIT} characters allowed"
    assert expected in raised.value.message
    assert expected in split.value.message
    assert refusal(refused)["code"] == "not_permitted"  # type: ignore[index]
    assert refusal(exact) is None
    assert [e["chars"] for e in _events(tmp_path / "audit.db", "session.trust")] == [LIMIT]


async def test_a_principal_without_trust_gets_an_error_not_a_silent_ignore(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path)
    config = _config(tmp_path, folder, desktop={"session": "task-1"})
    async with stdio_gateway(config) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool(
                "fs__write_file",
                _write(folder.typed),
                meta=carrier({"text": folder.said}),
            )
        after = await client.call_tool("fs__write_file", _write(folder.typed))
    assert raised.value.code == types.INVALID_PARAMS
    assert raised.value.message == (
        "this client may not declare trusted text (principals.desktop.trust is empty)"
    )
    assert refusal(after)["code"] == "not_permitted"  # type: ignore[index]
    assert folder.written() == set()
    db = tmp_path / "audit.db"
    assert _events(db, "mcp.trust_refused") == [
        {
            "event": "mcp.trust_refused",
            "principal": 'Agent::"desktop"',
            "session": "task-1",
            "reason": raised.value.message,
        }
    ]
    assert _events(db, "session.trust") == []


async def test_over_http_each_agent_declares_for_its_own_session_only(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    config = _config(
        tmp_path,
        folder,
        host={"session": "host-task", "trust": ["user"]},
        plain={"session": "plain-task"},
    )
    with http_gateway(config) as (url, _):
        for mode in ("legacy", "auto"):
            async with (
                bearer_client(url, HOST, mode=mode) as host,
                bearer_client(url, PLAIN, mode=mode) as plain,
            ):
                with pytest.raises(MCPError) as refused:
                    await plain.call_tool(
                        "fs__write_file",
                        _write(folder.typed),
                        meta=carrier({"text": folder.said}),
                    )
                assert "principals.plain.trust is empty" in refused.value.message
                declared = await host.call_tool(
                    "fs__write_file",
                    _write(folder.typed),
                    meta=carrier({"text": folder.said}),
                )
                assert refusal(declared) is None, (mode, declared)
                # the host's declaration is in the host's session, not in the other agent's
                other = await plain.call_tool("fs__write_file", _write(folder.typed))
                assert refusal(other)["code"] == "not_permitted"  # type: ignore[index]
                elsewhere = await host.call_tool("fs__write_file", _write(folder.other))
                assert refusal(elsewhere)["code"] == "not_permitted"  # type: ignore[index]
    assert folder.written() == {"plan.md"}
    trusted = _events(tmp_path / "audit.db", "session.trust")
    declared = [(e["session"], e["source"], e["declared_by"]) for e in trusted]
    assert declared == [("host-task", "user", 'Agent::"host"')] * 2


@pytest.mark.parametrize(
    ("trust", "message"),
    [
        (["User"], "principals.desktop.trust: a trusted source is named in lowercase"),
        (["tool:x"], "principals.desktop.trust: a trusted source is named in lowercase"),
        (["untrusted"], "principals.desktop.trust: 'untrusted' cannot name a trusted source"),
        (["approved"], "principals.desktop.trust: 'approved' is what a person approved"),
        ("user", "principals.desktop.trust: Input should be a valid list"),
    ],
)
def test_a_wrong_trust_setting_is_an_error_naming_the_key(
    tmp_path: Path, trust: Any, message: str
) -> None:
    (tmp_path / "policies").mkdir()
    path = write_config(
        tmp_path, tmp_path / "policies", {"fs": {"command": "x"}}, {"desktop": {"trust": trust}}
    )
    with pytest.raises(GatewayConfigError) as raised:
        load(path)
    assert message in str(raised.value)


def test_trust_is_off_unless_listed(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    path = write_config(
        tmp_path,
        tmp_path / "policies",
        {"fs": {"command": "x"}},
        {"desktop": {}, "host": {"trust": ["user", "helpdesk"]}},
    )
    config = load(path)
    assert config.trusted_sources(config.principal("desktop")) == frozenset()
    assert config.trusted_sources(config.principal("host")) == {"user", "helpdesk"}
