"""The guarantee ids and the tests that show them, checked in both directions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _table() -> dict[str, str]:
    text = (ROOT / "docs" / "guarantees.md").read_text()
    return dict(re.findall(r"^\| (G\d+) \| [^|]+ \| (shown|planned) \|$", text, re.M))


def _marked(config: pytest.Config, items: list[pytest.Item]) -> dict[str, set[str]]:
    """Guarantee id -> test node ids carrying @pytest.mark.requirement(id): from this
    session's own collection when it is the whole suite (as in CI), else collected anew."""
    if _whole_suite(config):
        found: dict[str, set[str]] = {}
        for item in items:
            for mark in item.iter_markers("requirement"):
                found.setdefault(mark.args[0], set()).add(item.nodeid)
        return found
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
    collected: dict[str, list[str]] = json.loads(out.stderr.strip().splitlines()[-1])
    return {k: set(v) for k, v in collected.items()}


def _whole_suite(config: pytest.Config) -> bool:
    """Whether this session collected every test: its one path is tests/, and nothing
    (-k, -m, --deselect, --lf, any plugin) deselected a test, as the reporter saw."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or reporter.stats.get("deselected"):
        return False
    return [Path(config.invocation_params.dir, a).resolve() for a in config.args] == [
        ROOT / "tests"
    ]


def test_every_shown_guarantee_has_a_test_and_every_marked_test_names_a_guarantee(
    request: pytest.FixtureRequest,
) -> None:
    table = _table()
    assert len(table) == 20
    marked = _marked(request.config, request.session.items)
    shown = {g for g, status in table.items() if status == "shown"}
    missing = sorted(shown - marked.keys())
    unknown = sorted(marked.keys() - table.keys())
    stale = sorted(g for g in marked if table.get(g) == "planned")
    assert not missing, f"guarantees marked shown without a test: {missing}"
    assert not unknown, f"tests name guarantees that do not exist: {unknown}"
    assert not stale, f"tests show guarantees still marked planned in docs: {stale}"
