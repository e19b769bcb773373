"""The README's MCP snippet, exactly as written, against the example bundle and the real
filesystem server: only permitted tools, a forbidden write refused with the disk
untouched, and both in the audit log the README's own command prints.

A copy of the checkout's example stands in for the user's checkout (the
README says to replace /path/to/warded with it), so the test writes nothing
into the repository. The example starts the server with `npx -y
@modelcontextprotocol/server-filesystem@VERSION`; tests never download, so
an `npx` on PATH runs the same version from tests/mcp/node (the lock file's,
checked equal) and refuses any other command line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp_helpers import EXAMPLE, NODE, ROOT, WAIT, node_bin, refusal

pytestmark = pytest.mark.anyio

PLACEHOLDER = "/path/to/warded"
PACKAGE = "@modelcontextprotocol/server-filesystem"


def _mcp_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## MCP gateway\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _snippet() -> dict[str, Any]:
    """The client configuration the README tells a user to paste."""
    block = re.search(r"```json\n(.*?)```", _mcp_section(), re.S)
    assert block, "the README's MCP section has no ```json block"
    return dict(json.loads(block.group(1)))


def _audit_command() -> list[str]:
    """The command the README gives for reading the audit log."""
    found = re.search(r"```\n(\S*warded audit tail [^\n]*)\n```", _mcp_section())
    assert found, "the README's MCP section shows no `warded audit tail` command"
    return found.group(1).split()


def _npx(folder: Path) -> Path:
    """An `npx` that runs the lock file's server-filesystem, and nothing else."""
    lock = json.loads((NODE / "package-lock.json").read_text())
    version = lock["packages"][f"node_modules/{PACKAGE}"]["version"]
    example = (EXAMPLE / "gateway.toml").read_text()
    assert f'"{PACKAGE}@{version}"' in example, "the example pins another version than the lock"
    folder.mkdir()
    npx = folder / "npx"
    npx.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" != "-y" ] || [ "$2" != "{PACKAGE}@{version}" ]; then\n'
        '  echo "npx stand-in: not the example\'s command: $*" >&2; exit 64\n'
        "fi\n"
        "shift 2\n"
        f'exec "{node_bin("mcp-server-filesystem")}" "$@"\n'
    )
    npx.chmod(npx.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The user's checkout: the example, and the virtualenv's `warded` where the README says."""
    root = tmp_path / "warded"
    shutil.copytree(
        EXAMPLE, root / "examples" / "mcp", ignore=shutil.ignore_patterns("*.db*", "*.key")
    )
    warded = Path(sys.executable).parent / "warded"
    assert warded.exists(), f"{warded} is missing: install the package (pip install -e .)"
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "warded").symlink_to(warded)
    return root


async def test_the_readme_snippet_shows_permitted_tools_refuses_a_forbidden_write_and_audits_both(
    checkout: Path, tmp_path: Path
) -> None:
    server = _snippet()["mcpServers"]["warded"]
    command = server["command"].replace(PLACEHOLDER, str(checkout))
    args = [a.replace(PLACEHOLDER, str(checkout)) for a in server["args"]]
    path = f"{_npx(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}"
    elsewhere = tmp_path / "client-cwd"  # a desktop client starts it from anywhere
    elsewhere.mkdir()
    params = StdioServerParameters(command=command, args=args, env={"PATH": path}, cwd=elsewhere)
    shared = checkout / "examples" / "mcp" / "shared"
    welcome = shared / "welcome.txt"
    before = welcome.read_bytes()
    note = shared / "notes" / "todo.md"

    async with Client(params, mode="legacy", read_timeout_seconds=WAIT) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        denied = await client.call_tool("fs__write_file", {"path": str(welcome), "content": "x"})
        allowed = await client.call_tool("fs__write_file", {"path": str(note), "content": "milk"})

    assert tools == {
        "fs__read_text_file",
        "fs__read_media_file",
        "fs__read_multiple_files",
        "fs__list_directory",
        "fs__list_directory_with_sizes",
        "fs__directory_tree",
        "fs__search_files",
        "fs__get_file_info",
        "fs__list_allowed_directories",
        "fs__write_file",
        "fs__edit_file",
        "fs__create_directory",
    }
    assert denied.is_error
    assert refusal(denied) is not None
    assert refusal(denied)["code"] == "not_permitted"  # type: ignore[index]
    text = "".join(c.text for c in denied.content if isinstance(c, types.TextContent))
    assert "This call is not permitted by policy." in text  # the clear message the user sees
    assert welcome.read_bytes() == before  # the disk is untouched
    assert not allowed.is_error
    assert note.read_text() == "milk"

    audit = subprocess.run(
        _audit_command(), cwd=checkout, capture_output=True, text=True, timeout=WAIT, check=True
    ).stdout
    writes = [line for line in audit.splitlines() if "fs__write_file" in line]
    assert any("deny (not_permitted)" in line for line in writes), audit
    assert any("allow" in line and "fs.write-notes" in line for line in writes), audit
    assert any("outcome ok" in line for line in writes), audit
