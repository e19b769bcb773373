"""The guarantee ids and the tests that show them, checked in both directions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _table() -> dict[str, str]:
    text = (ROOT / "docs" / "guarantees.md").read_text()
    return dict(re.findall(r"^\| (G\d+) \| [^|]+ \| (shown|planned) \|$", text, re.M))


def _marked() -> dict[str, set[str]]:
    """Guarantee id -> test node ids carrying @pytest.mark.requirement(id)."""
    script = (
        "import pytest, json, sys\n"
        "class P:\n"
        "    def __init__(self): self.found = {}\n"
        "    def pytest_collection_modifyitems(self, items):\n"
        "        for it in items:\n"
        "            for m in it.iter_markers('requirement'):\n"
        "                self.found.setdefault(m.args[0], []).append(it.nodeid)\n"
        "p = P()\n"
        "pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests'], plugins=[p])\n"
        "sys.stderr.write(json.dumps(p.found))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    import json

    found: dict[str, list[str]] = json.loads(out.stderr.strip().splitlines()[-1])
    return {k: set(v) for k, v in found.items()}


def test_every_shown_guarantee_has_a_test_and_every_marked_test_names_a_guarantee() -> None:
    table = _table()
    assert len(table) == 20
    marked = _marked()
    shown = {g for g, status in table.items() if status == "shown"}
    missing = sorted(shown - marked.keys())
    unknown = sorted(marked.keys() - table.keys())
    stale = sorted(g for g in marked if table.get(g) == "planned")
    assert not missing, f"guarantees marked shown without a test: {missing}"
    assert not unknown, f"tests name guarantees that do not exist: {unknown}"
    assert not stale, f"tests show guarantees still marked planned in docs: {stale}"
