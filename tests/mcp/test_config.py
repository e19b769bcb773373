"""The gateway config: a mistake is one error naming the key; names cannot collide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from warded.mcp.config import GatewayConfigError, exposed_name, parse, prompt_action, split_name
from warded.mcp.schema import cedar_schema
from warded.policy.bundle import PolicyBundle
from warded.policy.source import BundleFiles

GOOD: dict[str, Any] = {
    "policies": "policies",
    "upstreams": {"fs": {"command": "server", "args": ["/tmp"]}},
    "principals": {"desktop": {}},
    "stdio": {"principal": "desktop"},
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (_with(upstreams={"fs": {"command": ""}}), "upstreams.fs.command"),
        (_with(upstreams={"fs": {"comand": "x"}}), "upstreams.fs.comand"),
        (_with(upstreams={"fs_1": {"command": "x"}}), "upstreams.fs_1"),
        (_with(upstreams={"fs": {"command": "x", "url": "http://a"}}), "upstreams.fs"),
        (_with(upstreams={"fs": {"url": "ftp://a"}}), "upstreams.fs.url"),
        (_with(upstreams={"fs": {"url": "http://a", "args": ["x"]}}), "upstreams.fs.args"),
        (_with(upstreams={"fs": {"command": "x", "labels": [""]}}), "upstreams.fs.labels"),
        (_with(upstreams={}), "upstreams"),
        (_with(stdio={"principal": "nobody"}), "stdio.principal"),
        (_with(credentials=[{"principal": "desktop", "sha256": "abc"}]), "credentials[0].sha256"),
        (_with(credentials=[{"principal": "x", "sha256": "a" * 64}]), "credentials[0].principal"),
        (_with(http={"anonymous": "desktop", "host": "0.0.0.0"}), "http.anonymous"),
        (  # a proxy forwards the public URL to the loopback host: anyone would be "desktop"
            _with(http={"anonymous": "desktop", "public_url": "https://gw.example/mcp"}),
            "http.anonymous",
        ),
        (_with(http={"port": 70000}), "http.port"),
        *(
            (_with(upstreams={"fs": {"command": "x", "timeout": t}}), "upstreams.fs.timeout")
            for t in (0, -1, 0.0, float("nan"), float("inf"), 86401, "5", True)
        ),
        ({k: v for k, v in GOOD.items() if k != "policies"}, "policies"),
    ],
)
def test_a_bad_config_is_one_error_naming_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(GatewayConfigError) as caught:
        parse(raw, Path("/etc/gateway.toml"))
    assert f": {key}: " in str(caught.value) or f": {key} " in str(caught.value)


def test_an_upstream_waits_a_minute_for_an_answer_unless_configured() -> None:
    raw = _with(upstreams={"fs": {"command": "x"}, "web": {"url": "http://a", "timeout": 2.5}})
    config = parse(raw, Path("/etc/gateway.toml"))
    assert config.upstreams["fs"].timeout == 60.0
    assert config.upstreams["web"].timeout == 2.5
    whole = parse(_with(upstreams={"fs": {"command": "x", "timeout": 5}}), Path("/g.toml"))
    assert whole.upstreams["fs"].timeout == 5.0


def test_the_session_of_a_principal_is_the_configured_one_or_derived_from_it() -> None:
    raw = _with(principals={"desktop": {"session": "run-7"}, "ci": {}})
    config = parse(raw, Path("/etc/gateway.toml"))
    assert config.session_of(config.principal("desktop")) == "run-7"
    assert config.session_of(config.principal("ci")) == 'mcp:Agent::"ci"'


def test_exposed_names_split_one_way_only() -> None:
    assert exposed_name("fs", "read_file") == "fs__read_file"
    assert split_name("fs__read__file") == ("fs", "read__file")
    assert exposed_name("fs", "a.b") is None  # not a warded tool name
    assert exposed_name("fs", "x" * 70) is None
    assert split_name("fs_x") is None


@pytest.mark.requirement("G2")
def test_a_name_with_a_trailing_newline_is_not_exposed() -> None:
    # `$` matches before a final newline: "read\n" would be listed as a look-alike of "read"
    assert exposed_name("fs", "read\n") is None
    assert prompt_action("fs", "simple\n") is None


def test_the_generated_schema_loads_and_types_the_arguments() -> None:
    import mcp_types as types

    config = parse(GOOD, Path("/etc/gateway.toml"))
    listed = {
        "fs": [
            types.Tool(
                name="write_file",
                input_schema={
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "size": {"type": "integer"},
                        "ratio": {"type": ["number", "null"]},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "anything": {"type": "object"},
                    },
                    "required": ["path", "size"],
                },
            ),
            types.Tool(name="bad.name", input_schema={"type": "object"}),
        ]
    }
    text = cedar_schema(config, listed)
    assert '"anything"; calls passing it are denied' in text
    assert "args: { path: String, size: Long, ratio?: decimal, tags?: Set<String> }" in text
    bundle = PolicyBundle.load(
        BundleFiles(
            (("all.cedar", "permit (principal, action, resource);"),), ("schema.cedarschema", text)
        )
    )
    assert bundle.action_uid("fs__write_file") == {"type": "Action", "id": "fs__write_file"}
