"""Fixtures for the MCP gateway tests; the helpers live in mcp_helpers.py beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import mcp_helpers`


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
